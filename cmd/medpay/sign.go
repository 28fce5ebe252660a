package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/medpay/medpay/wire"
)

// stdin is where 'medpay sign' reads a message given as "-" or not at all (tests replace it).
var stdin io.Reader = os.Stdin

const signUsage = `usage: medpay sign --key KEY [--sign SIG] [--expect FILE] [--sign-type T] [FILE | - | name=value ...]

Computes the signature of an open API message (docs/api/README.md (signing)) and explains it: the fields as
signed, the string to sign (the key shown as ***), the signature. With --sign, or a message that
carries a sign field, says whether it verifies and, when it does not, which usual mistake
reproduces the signature given. With --expect another message (e.g. the one your code sent, or
the one the platform's error was about), lists the fields that differ.

The message is an XML file, "-" or nothing for standard input, or name=value arguments.
The key is never printed.
`

func runSign(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("sign", stdout)
	setUsage(fs, signUsage)
	key := fs.String("key", "", "required: the API key")
	given := fs.String("sign", "", "a signature to check (default: the message's sign field)")
	expect := fs.String("expect", "", "another message (XML file) to compare field by field")
	signType := fs.String("sign-type", "", "add sign_type=MD5|HMAC-SHA256 to a message that has none")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("--key (or MEDPAY_KEY) is required")
	}
	m, err := readMessage(fs.Args())
	if err != nil {
		return err
	}
	if *signType != "" {
		if st := m.Get("sign_type"); st != "" && st != *signType {
			return fmt.Errorf("--sign-type %s, but the message says sign_type=%s", *signType, st)
		}
		m.Set("sign_type", *signType)
	}
	if *given == "" {
		*given = m.Get("sign")
	}
	sig, err := wire.Sign(m, *key)
	if err != nil {
		return fmt.Errorf("sign_type %q: want MD5 or HMAC-SHA256", m.Get("sign_type"))
	}

	printFields(stdout, m)
	fmt.Fprintf(stdout, "string to sign  %s\n", wire.RedactedCanonicalString(m))
	fmt.Fprintf(stdout, "sign_type       %s\n", signTypeName(m.Get("sign_type")))
	fmt.Fprintf(stdout, "signature       %s\n", sig)

	var failed error
	if *given != "" {
		check := m.Clone()
		check.Set("sign", *given)
		fmt.Fprintf(stdout, "given sign      %s\n", *given)
		if wire.Verify(check, *key) {
			fmt.Fprintln(stdout, "verifies        yes")
		} else {
			fmt.Fprintln(stdout, "verifies        NO")
			failed = errors.New("the signature does not verify")
			if causes := diagnose(m, *key, strings.ToUpper(*given)); len(causes) > 0 {
				fmt.Fprintln(stdout, "the given signature is what you get when:")
				for _, c := range causes {
					fmt.Fprintf(stdout, "  - %s\n", c)
				}
			} else {
				fmt.Fprintln(stdout, "no usual mistake reproduces it: compare your string to sign with the one above field by field,")
				fmt.Fprintln(stdout, "check the key (the 32-character API key of mch_id; the service provider's in provider mode),")
				fmt.Fprintln(stdout, "or give the message your code built with --expect")
			}
		}
	}

	if *expect != "" {
		other, err := readMessage([]string{*expect})
		if err != nil {
			return fmt.Errorf("--expect: %w", err)
		}
		fmt.Fprintln(stdout)
		diff := wire.Diff(withoutSign(m), withoutSign(other))
		if len(diff) == 0 {
			fmt.Fprintln(stdout, "the two messages have the same fields (sign aside)")
		} else {
			fmt.Fprintln(stdout, "fields that differ (this message vs --expect):")
			for _, d := range diff {
				fmt.Fprintf(stdout, "  %s\n", d)
			}
		}
		osig, err := wire.Sign(other, *key)
		if err != nil {
			return fmt.Errorf("--expect: sign_type %q: want MD5 or HMAC-SHA256", other.Get("sign_type"))
		}
		fmt.Fprintf(stdout, "--expect string to sign  %s\n", wire.RedactedCanonicalString(other))
		fmt.Fprintf(stdout, "--expect signature       %s\n", osig)
		if other.Get("sign") != "" {
			verdict := "yes"
			if !wire.Verify(other, *key) {
				verdict = "NO"
			}
			fmt.Fprintf(stdout, "--expect sign verifies   %s\n", verdict)
		}
	}
	return failed
}

// readMessage reads an XML file, standard input ("-" or no argument) or name=value arguments.
func readMessage(args []string) (*wire.Message, error) {
	if len(args) > 0 && strings.Contains(args[0], "=") {
		m := wire.NewMessage()
		for _, a := range args {
			name, value, ok := strings.Cut(a, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("argument %q: want name=value", a)
			}
			m.Set(name, value)
		}
		return m, nil
	}
	if len(args) > 1 {
		return nil, errors.New("give one XML file, or name=value arguments")
	}
	var data []byte
	var err error
	if len(args) == 0 || args[0] == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, wire.MaxBodySize+1))
	} else {
		data, err = os.ReadFile(args[0])
	}
	if err != nil {
		return nil, err
	}
	m, err := wire.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the message is not an open API XML document: %w", err)
	}
	return m, nil
}

func withoutSign(m *wire.Message) *wire.Message {
	c := m.Clone()
	c.Del("sign")
	return c
}

func signTypeName(st string) string {
	if st == "" {
		return "MD5 (no sign_type field)"
	}
	return st
}

// printFields lists the fields sorted as signed, and those that are not signed and why.
func printFields(w io.Writer, m *wire.Message) {
	keys := m.Keys()
	slices.Sort(keys)
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	fmt.Fprintln(w, "fields, in signing order:")
	for _, k := range keys {
		v := m.Get(k)
		note := ""
		switch {
		case k == "sign":
			note = "   (not signed: the signature itself)"
		case v == "":
			note = "   (not signed: empty)"
		case v != strings.TrimSpace(v):
			note = "   (signed with its leading/trailing white space)"
		case v == "0":
			note = "   (signed: 0 is kept)"
		}
		fmt.Fprintf(w, "  %-*s  %s%s\n", width, k, escapeNewlines(v), note)
	}
}

// diagnose tries the usual signing mistakes and returns those that reproduce sig.
func diagnose(m *wire.Message, key, sig string) []string {
	type field struct{ k, v string }
	var all []field
	for _, k := range m.Keys() {
		if k != "sign" {
			all = append(all, field{k, m.Get(k)})
		}
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b field) int { return strings.Compare(a.k, b.k) })
	join := func(fs []field, keep func(field) bool, val func(string) string) string {
		var parts []string
		for _, f := range fs {
			if keep(f) {
				parts = append(parts, f.k+"="+val(f.v))
			}
		}
		return strings.Join(parts, "&")
	}
	nonEmpty := func(f field) bool { return f.v != "" }
	raw := func(v string) string { return v }
	st := m.Get("sign_type")
	hashes := func(s string) map[string]string { // algorithm -> signature of s + key
		md := md5.Sum([]byte(s))
		h := hmac.New(sha256.New, []byte(key))
		h.Write([]byte(s))
		return map[string]string{
			wire.SignTypeMD5:        strings.ToUpper(hex.EncodeToString(md[:])),
			wire.SignTypeHMACSHA256: strings.ToUpper(hex.EncodeToString(h.Sum(nil))),
		}
	}
	mine := wire.SignTypeMD5
	if st == wire.SignTypeHMACSHA256 {
		mine = wire.SignTypeHMACSHA256
	}
	other := wire.SignTypeHMACSHA256
	if mine == other {
		other = wire.SignTypeMD5
	}

	var causes []string
	tried := map[string]bool{}
	try := func(base, why string) {
		if tried[base] { // this mistake would not change the string: it says nothing
			return
		}
		tried[base] = true
		hs := hashes(base + "&key=" + key)
		switch sig {
		case hs[mine]:
			causes = append(causes, why)
		case hs[other]:
			causes = append(causes, why+", and signed with "+other+" although sign_type says "+signTypeName(st))
		}
	}
	canonical := join(sorted, nonEmpty, raw)
	try(canonical, "the algorithm differs: the fields are right") // only the other algorithm can match here
	try(join(sorted, func(f field) bool { return f.v != "" && f.v != "0" }, raw),
		"fields whose value is 0 are left out: keep them (e.g. cash_fee=0)")
	try(join(sorted, func(field) bool { return true }, raw), "empty fields are signed as name=: leave them out")
	try(join(sorted, func(f field) bool { return f.v != "" && f.k != "sign_type" }, raw), "sign_type is left out of the string: sign it too")
	try(join(all, nonEmpty, raw), "the fields are in message order: sort them by name (byte-wise)")
	try(join(sorted, nonEmpty, url.QueryEscape), "the values are URL-encoded: sign the raw values")
	try(join(sorted, func(f field) bool { return strings.TrimSpace(f.v) != "" }, strings.TrimSpace),
		"the values are trimmed: sign them exactly as sent")
	for _, s := range []struct{ str, why string }{
		{canonical + key, "the key is appended without &key="},
		{canonical, "the key is not appended at all"},
	} {
		hs := hashes(s.str)
		if sig == hs[mine] || sig == hs[other] {
			causes = append(causes, s.why)
		}
	}
	for _, f := range sorted {
		if f.v == "" {
			continue
		}
		try(join(sorted, func(g field) bool { return g.v != "" && g.k != f.k }, raw),
			fmt.Sprintf("field %s is not signed (added after signing?): sign every field sent", f.k))
	}
	// The first candidate matches only with the other algorithm; phrase it plainly.
	for i, c := range causes {
		if strings.HasPrefix(c, "the algorithm differs") {
			causes[i] = "it is signed with " + other + " although sign_type says " + signTypeName(st) +
				": set sign_type to match, the fields are right"
		}
	}
	return causes
}
