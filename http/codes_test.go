package http

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestEveryDomainCodeHasAStatus reads the domain package's source for its
// error-code constants (E… = "…") and checks each has an HTTP status, so a
// new code can never fall through to a 500.
func TestEveryDomainCodeHasAStatus(t *testing.T) {
	files, err := filepath.Glob("../domain/*.go")
	if err != nil {
		t.Fatal(err)
	}
	isCode := regexp.MustCompile(`^E[A-Z]+$`)
	found := 0
	fset := token.NewFileSet()
	for _, f := range files {
		if matched, _ := filepath.Match("*_test.go", filepath.Base(f)); matched {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range spec.Names {
				if !isCode.MatchString(name.Name) || i >= len(spec.Values) {
					continue
				}
				lit, ok := spec.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				code, _ := strconv.Unquote(lit.Value)
				found++
				if _, ok := codes[code]; !ok {
					t.Errorf("domain.%s (%q) has no HTTP status in the codes table", name.Name, code)
				}
			}
			return true
		})
	}
	if found < 10 {
		t.Fatalf("found only %d error codes in the domain package; the scan is broken", found)
	}
}
