package store_test

import (
	"slices"
	"testing"

	"github.com/idbroker/idbroker/store"
)

func TestNormalizeDomain(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"acme.com", "acme.com"},
		{"  Acme.COM. ", "acme.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"Bücher.Example.", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"},
		{"ａｃｍｅ.com", "acme.com"}, // full-width forms
		{"münchen.de", "xn--mnchen-3ya.de"},
		{"faß.de", "xn--fa-hia.de"}, // non-transitional: ß is kept
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"sub.bücher.example", "sub.xn--bcher-kva.example"},
		{"acme.com\u3002", "acme.com"},       // ideographic full stop as the root dot
		{"ａｃｍｅ．ｃｏｍ．", "acme.com"},            // full-width dots
		{"ac\u00adme.com", "acme.com"},       // a soft hyphen maps to nothing
		{"\u0430cme.com", "xn--cme-5cd.com"}, // Cyrillic а: another domain, not acme.com
		{"acme.com..", ""},
		{"acme.com.\u3002", ""},
		{"", ""},
		{".", ""},
		{"..", ""},
		{"acme..com", ""},
		{"-acme.com", ""},
		{"ac me.com", ""},
		{"acme.com/x", ""},
		{"a@acme.com", ""},
		{"acme_corp.com", ""},
		{"dom_x.com", ""},      // no name can pass for a domain id (store.Domain's ref)
		{"dom\uff3fx.com", ""}, // full-width low line maps to '_', refused too
		{"\xff.com", ""},
		{"a" + string(make([]byte, 70)) + ".com", ""},
	} {
		if got := store.NormalizeDomain(tc.in); got != tc.want {
			t.Errorf("NormalizeDomain(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEmailDomain(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"alice@acme.com", "acme.com", true},
		{"Alice@ACME.com", "acme.com", true},
		{"a@bücher.example", "xn--bcher-kva.example", true},
		{"a@xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{`"odd@local"@acme.com`, "acme.com", true},
		{"ceo@other.example@acme.com", "", false},
		{`"ceo@other.example@acme.com`, "", false},
		{"alice@localhost", "localhost", false},
		{"alice", "", false},
		{"@acme.com", "", false},
		{"alice@", "", false},
		{"alice@acme..com", "", false},
	} {
		got, ok := store.EmailDomain(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("EmailDomain(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@acme.com", "alice@acme.com"},
		{"  Alice@ACME.com ", "alice@acme.com"},
		{"alice@acme.com.", "alice@acme.com"},
		{"alice@acme.com\u3002", "alice@acme.com"},
		{"alice@acme.com..", "alice@acme.com.."},     // no domain: only trimmed
		{"alice+tag@acme.com", "alice+tag@acme.com"}, // a tag is another address
		{"alice@ａｃｍｅ.com", "alice@acme.com"},         // full-width domain
		{"a@bücher.example", "a@bücher.example"},
		{"A@BÜCHER.Example.", "a@bücher.example"},
		{"a@xn--bcher-kva.example", "a@bücher.example"},
		{"a@XN--BCHER-KVA.EXAMPLE", "a@bücher.example"},
		{"a@bu\u0308cher.example", "a@bücher.example"}, // decomposed ü (NFD)
		{"ÉLODIE@acme.com", "élodie@acme.com"},
		{"jose\u0301@acme.com", "jos\u00e9@acme.com"}, // decomposed é (NFD)
		{`"Odd@Local"@Acme.com`, `"odd@local"@acme.com`},
		{"a@faß.de", "a@faß.de"},
		// Not addresses: only trimmed.
		{" alice ", "alice"},
		{"Alice@localhost", "Alice@localhost"},
		{"Alice@acme_corp.com", "Alice@acme_corp.com"},
		{"", ""},
	} {
		if got := store.NormalizeEmail(tc.in); got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEmailForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Alice@Acme.com", []string{"alice@acme.com"}},
		{"a@xn--bcher-kva.example", []string{"a@bücher.example", "a@xn--bcher-kva.example"}},
		{"a@Bücher.example.", []string{"a@bücher.example", "a@xn--bcher-kva.example"}},
		{"alice", []string{"alice"}},
	} {
		if got := store.EmailForms(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("EmailForms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !store.SameEmail("Alice@xn--bcher-kva.example", " alice@BÜCHER.example.") || store.SameEmail("alice@acme.com", "alice@notacme.com") {
		t.Error("SameEmail")
	}
}

func TestBareAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@acme.com", "alice@acme.com"},
		{"  Alice@ACME.com. ", "Alice@ACME.com."},
		{"mailto:alice@acme.com", "alice@acme.com"},
		{"MailTo: alice@acme.com", "alice@acme.com"},
		{"Alice Lee <alice@acme.com>", "alice@acme.com"},
		{`"Lee, Alice" <alice@acme.com>`, "alice@acme.com"},
		{"<alice@acme.com>", "alice@acme.com"},
		{"<mailto:alice@acme.com>", "alice@acme.com"},
		{"bob@other.example <alice@acme.com>", "alice@acme.com"},
		// Not one wrapped address: left for the caller to refuse.
		{"a <b> <alice@acme.com>", "a <b> <alice@acme.com>"},
		{"<alice@acme.com", "<alice@acme.com"},
		{"alice@acme.com>", "alice@acme.com>"},
		{"mailto:", "mailto:"},
		{`"m t"@acme.com`, `"m t"@acme.com`},
		{"", ""},
	} {
		if got := store.BareAddress(tc.in); got != tc.want {
			t.Errorf("BareAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
