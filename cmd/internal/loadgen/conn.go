package loadgen

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Conn is one client's keep-alive connection to the server. Requests
// are written by hand and answers read with http.ReadResponse, without
// net/http's Transport and the two goroutines it runs per connection: the
// load generator shares the machine with the server, so it should take as
// little of its CPU as it can.
type Conn struct {
	// Addr is the server's host:port.
	Addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	buf  bytes.Buffer
}

func (bc *Conn) Close() {
	if bc.c != nil {
		bc.c.Close()
		bc.c = nil
	}
}

// do sends one request and returns the answer's body, valid until the next
// call, and its status. A request is never resent: commands without an
// Idempotency-Key are not safe to repeat.
func (bc *Conn) Do(method, path, token, key string, body []byte) ([]byte, int, error) {
	if bc.c == nil {
		c, err := net.DialTimeout("tcp", bc.Addr, 5*time.Second)
		if err != nil {
			return nil, 0, err
		}
		bc.c, bc.br, bc.bw = c, bufio.NewReaderSize(c, 32<<10), bufio.NewWriterSize(c, 4<<10)
	}
	_ = bc.c.SetDeadline(time.Now().Add(30 * time.Second))
	w := bc.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(bc.Addr)
	w.WriteString("\r\nAuthorization: Bearer ")
	w.WriteString(token)
	if key != "" {
		w.WriteString("\r\nIdempotency-Key: ")
		w.WriteString(key)
	}
	if body != nil {
		w.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		bc.Close()
		return nil, 0, err
	}
	resp, err := http.ReadResponse(bc.br, nil)
	if err != nil {
		bc.Close()
		return nil, 0, err
	}
	bc.buf.Reset()
	_, err = bc.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		bc.Close()
	}
	return bc.buf.Bytes(), resp.StatusCode, err
}
