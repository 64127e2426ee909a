package console

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"

	"talentledger/domain"
	"talentledger/projections"
)

// constants returns the string constants of the Go package in dir whose
// names match name: the event types, payment states, … as the code
// declares them, so a new one cannot escape the catalogue.
func constants(t *testing.T, dir string, name *regexp.Regexp) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !name.MatchString(n.Name) || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out = append(out, v)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no constants %s in %s", name, dir)
	}
	return out
}

// families are the keys made of a prefix and a value the templates
// translate with tk, each with every value it can take.
func families(t *testing.T) map[string][]string {
	// The one list of error codes, and the console's own.
	codes := []string{"csrf"}
	for _, c := range domain.Codes {
		codes = append(codes, c.Code)
	}
	var fields []string
	for _, a := range grantActions {
		fields = append(fields, a.fields...)
	}
	return map[string][]string{
		"problem":  codes,
		"event":    constants(t, "../../domain", regexp.MustCompile(`^Type[A-Z]`)),
		"state":    domain.GrantStates,
		"role":     domain.Roles,
		"inst":     {projections.InstallmentScheduled, projections.InstallmentPrepared, projections.InstallmentApproved, projections.InstallmentPaid, projections.InstallmentCancelled},
		"pay":      constants(t, "../../domain", regexp.MustCompile(`^PaymentState`)),
		"decision": {"approve", "reject"},
		"alert":    {"idle_cash", "term_ending", "concentration"},
		"change":   constants(t, "../../domain", regexp.MustCompile(`^Change[A-Z]`)),
		"fundtype": {domain.FundSpecial, domain.FundDirectInvestment},
		"project":  {domain.InvestmentApprovedState, domain.InvestmentFundedState, domain.InvestmentExited, domain.InvestmentWrittenOff},
		"sector":   domain.Sectors,
		"signin":   {eventSignIn, eventSignInFailed, eventSignOut, eventSessionEnded, eventSessionRevok},
		"source":   {"log", "file"},
		"field":    fields,
		"dl":       {"xlsx", "csv", "xlsx_en", "csv_en"},
		"return":   {"distribution", "exit"},
		"movement": {"commitment", "paid_in", "distribution"},
	}
}

// TestCatalogue: every key the templates and the code name is in the
// catalogue with a Chinese and an English text, and so is every value of
// every family (each problem code, event type, state, role, …).
func TestCatalogue(t *testing.T) {
	for k, m := range catalogue {
		if strings.TrimSpace(m.zh) == "" || strings.TrimSpace(m.en) == "" {
			t.Errorf("%s: a text is missing (zh %q, en %q)", k, m.zh, m.en)
		}
	}
	need := func(key, where string) {
		if _, ok := catalogue[key]; !ok {
			t.Errorf("%s: key %q is not in the catalogue", where, key)
		}
	}
	fams := families(t)
	for prefix, values := range fams {
		for _, v := range values {
			need(prefix+"."+v, "family "+prefix)
		}
	}

	// Keys in templates: the string argument of t, tf, and the prefix of tk.
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := fs.ReadFile(templateFS, n)
		trees, err := parse.Parse(n, string(b), "{{", "}}", funcs("zh"), map[string]any{"and": 1, "or": 1, "not": 1, "eq": 1, "index": 1, "len": 1, "printf": 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, tree := range trees {
			walk(tree.Root, func(cmd *parse.CommandNode) {
				id, ok := cmd.Args[0].(*parse.IdentifierNode)
				if !ok || len(cmd.Args) < 2 {
					return
				}
				s, ok := cmd.Args[1].(*parse.StringNode)
				switch {
				case !ok:
				case id.Ident == "t" || id.Ident == "tf":
					need(s.Text, n)
				case id.Ident == "tk":
					if fams[s.Text] == nil {
						t.Errorf("%s: tk %q is no known family", n, s.Text)
					}
				}
			})
		}
	}

	// Keys in the code: string literals shaped like a key, with a prefix
	// the catalogue uses.
	prefixes := map[string]bool{}
	for k := range catalogue {
		p, _, _ := strings.Cut(k, ".")
		prefixes[p] = true
	}
	reKey := regexp.MustCompile(`^[a-z_]+\.[a-z_.]*[a-z_]$`)
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			p, _, _ := strings.Cut(s, ".")
			if reKey.MatchString(s) && prefixes[p] && !strings.HasSuffix(s, ".csv") && !strings.HasSuffix(s, ".xlsx") {
				need(s, fset.Position(lit.Pos()).String())
			}
			return true
		})
	}
	for _, r := range domain.Roles {
		need("reason.role."+r, "paymentButtons")
	}
}

func walk(n parse.Node, f func(*parse.CommandNode)) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x != nil {
			for _, c := range x.Nodes {
				walk(c, f)
			}
		}
	case *parse.ActionNode:
		walk(x.Pipe, f)
	case *parse.PipeNode:
		if x != nil {
			for _, c := range x.Cmds {
				walk(c, f)
			}
		}
	case *parse.CommandNode:
		f(x)
		for _, a := range x.Args {
			walk(a, f)
		}
	case *parse.IfNode:
		walk(x.Pipe, f)
		walk(x.List, f)
		walk(x.ElseList, f)
	case *parse.RangeNode:
		walk(x.Pipe, f)
		walk(x.List, f)
		walk(x.ElseList, f)
	case *parse.WithNode:
		walk(x.Pipe, f)
		walk(x.List, f)
		walk(x.ElseList, f)
	case *parse.TemplateNode:
		walk(x.Pipe, f)
	}
}

var (
	reAction   = regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	reComment  = regexp.MustCompile(`(?s)<!--.*?-->`)
	reTag      = regexp.MustCompile(`(?s)<[^>]*>`)
	reEntity   = regexp.MustCompile(`&[a-z]+;|&#[0-9]+;`)
	reWords    = regexp.MustCompile(`[A-Za-z\p{Han}]+`)
	reAttrText = regexp.MustCompile(`(?:title|placeholder|aria-label|alt)="([^"]*)"`)
)

// TestNoTextOutsideCatalogue: the templates hold no words of their own,
// in text or in the attributes people read; every one comes from the
// catalogue.
func TestNoTextOutsideCatalogue(t *testing.T) {
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := fs.ReadFile(templateFS, n)
		src := reAction.ReplaceAllString(string(b), "\x00")
		for _, m := range reAttrText.FindAllStringSubmatch(src, -1) {
			if reWords.MatchString(m[1]) {
				t.Errorf("%s: attribute text %q is not from the catalogue", n, m[0])
			}
		}
		rest := reEntity.ReplaceAllString(reTag.ReplaceAllString(reComment.ReplaceAllString(src, ""), " "), " ")
		if w := reWords.FindAllString(rest, -1); len(w) > 0 {
			t.Errorf("%s: text not from the catalogue: %q", n, w)
		}
	}
}

// TestEnglishDiffers: an English text that is the Chinese one is a text
// left untranslated (a few are the same on purpose).
func TestEnglishDiffers(t *testing.T) {
	same := []string{"role.", "fund.tvpi"}
	for k, m := range catalogue {
		if m.zh == m.en && !slices.Contains(same, k) {
			t.Errorf("%s: the same in both languages: %q", k, m.zh)
		}
	}
}

// TestMoney: amounts as ¥1,234,567.00, and in 万元.
func TestMoney(t *testing.T) {
	for _, c := range []struct{ in, unit, lang, want string }{
		{"1234567", "yuan", "zh", "¥1,234,567.00"},
		{"0.5", "yuan", "zh", "¥0.50"},
		{"-1234.5", "yuan", "en", "¥-1,234.50"},
		{"999", "yuan", "zh", "¥999.00"},
		{"60000000", "wan", "zh", "6,000.00万元"},
		{"12345678.9", "wan", "en", "¥1,234.57 ×10,000"},
	} {
		if got := formatMoney(toDecimal(c.in), c.unit, c.lang); got != c.want {
			t.Errorf("%s in %s (%s): %q, want %q", c.in, c.unit, c.lang, got, c.want)
		}
	}
}
