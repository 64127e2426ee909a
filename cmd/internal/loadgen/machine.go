package loadgen

import (
	"fmt"
	"os"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
)

// MachineLoad is the load average and the CPU and I/O pressure (the share
// of the last 60 s some task waited for a CPU or for I/O), from /proc.
type MachineLoad struct {
	LoadAvg1    float64 `json:"loadavg_1m"`
	CPUPressure float64 `json:"cpu_pressure_some_avg60"`
	IOPressure  float64 `json:"io_pressure_some_avg60"`
}

func ReadMachineLoad() MachineLoad {
	var m MachineLoad
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &m.LoadAvg1)
	}
	pressure := func(path string) float64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
			if v, ok := strings.CutPrefix(f, "avg60="); ok {
				x, _ := strconv.ParseFloat(v, 64)
				return x
			}
		}
		return 0
	}
	m.CPUPressure = pressure("/proc/pressure/cpu")
	m.IOPressure = pressure("/proc/pressure/io")
	return m
}

// RSS returns the process's resident set size in bytes (0 where /proc is
// not available).
func RSS() uint64 { return ProcStatus(os.Getpid(), "VmRSS") }

// ProcStatus reads a kB field of /proc/<pid>/status, in bytes.
func ProcStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// ProcCPU returns the CPU a process has used, user and system, in
// seconds, from /proc/<pid>/stat (0 where it cannot be read). Linux
// counts it in ticks of USER_HZ, 100 a second on every architecture Go
// builds for.
func ProcCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted start after its closing one, at field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return float64(utime+stime) / 100
}

// HeapLive returns the live heap as of the last garbage collection.
func HeapLive() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func MiB(b uint64) float64 { return float64(b) / (1 << 20) }
