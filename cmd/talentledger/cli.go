package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"talentledger/eventstore/pebble"
)

// The command line is the standard flag package behind one strict wrapper,
// so that every subcommand refuses mistakes alike: newFlagSet makes a
// subcommand's flag set, parseFlags fills it from the environment and the
// arguments. Mistakes are usageErrors, reported on one line with exit 2;
// -h and --help print the flags to stdout and exit 0.

// usageError is a mistake on the command line or in the environment.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// newFlagSet returns the flag set of a subcommand. Its help goes to help
// (stdout); parse errors are never printed by the flag package, only
// returned, so each is reported once.
func newFlagSet(name string, help io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(help)
	return fs
}

// envName is the environment variable of a flag: --max-in-flight is
// TALENTLEDGER_MAX_IN_FLIGHT.
func envName(flagName string) string {
	return "TALENTLEDGER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags fills fs from the environment, then from args, which win. It
// refuses an unknown flag, a value that does not parse (numbers strictly:
// digits only, no sign unless the flag may be negative, no leading zero,
// no space), and any argument that is not a flag. On -h or --help it
// prints the flags and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	return parseFlagsAnd(fs, args)
}

// parseFlagsAnd is parseFlags for a subcommand that takes, after its
// flags, exactly the arguments named in operands (e.g. "FILE").
func parseFlagsAnd(fs *flag.FlagSet, args []string, operands ...string) error {
	// The strict wrappers stand in only while parsing, so that the flag
	// package prints each flag's type and default as usual.
	orig := map[string]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) { orig[f.Name], f.Value = f.Value, strictValue(f.Value) })
	defer fs.VisitAll(func(f *flag.Flag) { f.Value = orig[f.Name] })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = usagef("%s=%q: %v", envName(f.Name), clipArg(v), err)
		}
	})
	if envErr != nil {
		return envErr
	}
	help, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(help)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.VisitAll(func(f *flag.Flag) { f.Value = orig[f.Name] })
		fmt.Fprintf(help, "usage: talentledger %s [flags]%s\n\nEvery flag can also be set as the environment variable TALENTLEDGER_<FLAG>.\n\nflags:\n",
			fs.Name(), strings.Join(append([]string{""}, operands...), " "))
		fs.PrintDefaults()
		return flag.ErrHelp
	case err != nil:
		return &usageError{msg: err.Error()}
	case fs.NArg() > len(operands) && len(operands) == 0:
		return usagef("unexpected argument %q: flags go before any argument, and %s takes none", clipArg(fs.Arg(0)), fs.Name())
	case fs.NArg() > len(operands):
		return usagef("unexpected argument %q after %s: flags go before %[2]s", clipArg(fs.Arg(len(operands))), strings.Join(operands, " "))
	case fs.NArg() < len(operands):
		return usagef("missing %s (usage: talentledger %s [flags] %s)", operands[fs.NArg()], fs.Name(), strings.Join(operands, " "))
	}
	return nil
}

func clipArg(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// exitCode reports err from a subcommand on one line and returns the exit
// code: 0 for none or help, 2 otherwise.
func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "talentledger %s: %v\n", name, err)
	return exitCantRun
}

// Strict number syntax: what the flag package accepts beyond these
// (0x10, 1_000, +5, -0, 007) is refused.
var (
	reUnsigned = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	reSigned   = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)
	reFloat    = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	reDuration = regexp.MustCompile(`^((0|[1-9][0-9]*)(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)
)

// strict wraps a numeric flag.Value so that only the strict syntax
// reaches it.
type strict struct {
	flag.Value
	re   *regexp.Regexp
	want string
}

func (s strict) Set(v string) error {
	if !s.re.MatchString(v) {
		return errors.New(s.want)
	}
	return s.Value.Set(v)
}

// IsBoolFlag passes on whether the wrapped value is a boolean flag.
func (s strict) IsBoolFlag() bool {
	b, ok := s.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func strictValue(v flag.Value) flag.Value {
	g, ok := v.(flag.Getter)
	if !ok {
		return v
	}
	switch g.Get().(type) {
	case int, int64:
		return strict{v, reSigned, "must be a whole number written in digits, such as 64 or -1"}
	case uint, uint64:
		return strict{v, reUnsigned, "must be a whole number written in digits, such as 64"}
	case float64:
		return strict{v, reFloat, "must be a number written in digits, such as 0.5"}
	case time.Duration:
		return strict{v, reDuration, "must be a duration such as 5s, 1m30s or 250ms"}
	}
	return v
}

// version is the release, set at build time with
// -ldflags '-X main.version=…'; otherwise the module's version, if any.
var version = ""

// runVersion prints the release, the Go version it was built with and the
// format of the data directories it reads and writes.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(stdout, "talentledger %s\ngo %s %s/%s\nstore format %d\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, pebble.FormatVersion)
	return nil
}
