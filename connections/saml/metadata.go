package saml

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/safehttp"
)

// MaxMetadataBytes caps IdP metadata, pasted or fetched. Single-entity
// metadata is a few kilobytes; federation aggregates are not supported.
const MaxMetadataBytes = 1 << 20

// idpSettings is what a SAML connection needs of its IdP, however given.
type idpSettings struct {
	EntityID     string
	SSOURL       string
	SSOBinding   string
	Certificates []Certificate
	// WantsSignedRequests is the metadata's WantAuthnRequestsSigned.
	WantsSignedRequests bool
	// EmailNameIDOnly: the metadata lists the emailAddress NameID format
	// and not the persistent one (Config.IdPEmailNameIDOnly).
	EmailNameIDOnly bool
}

// hasDTD reports whether XML input carries a document type or entity
// declaration, in any letter case. Go's encoding/xml and etree do not
// expand entities, but nothing a SAML party sends legitimately has a DTD,
// so it is refused outright rather than parsed around (billion laughs,
// XXE). It runs on every ACS request, so it scans without copying.
func hasDTD(b []byte) bool {
	for {
		i := bytes.Index(b, []byte("<!"))
		if i < 0 {
			return false
		}
		b = b[i+2:]
		if hasPrefixFold(b, "DOCTYPE") || hasPrefixFold(b, "ENTITY") {
			return true
		}
	}
}

// isHTML reports a document that starts as an HTML page does.
func isHTML(b []byte) bool {
	b = bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	return hasPrefixFold(b, "<!doctype html") || hasPrefixFold(b, "<html")
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// parseIdPMetadata reads IdP metadata XML (an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one IdP, or the IdP entityID names in
// a federation's aggregate of many). Its SSO URL is held to the rule of the
// manual idp_sso_url field: plain http only when allowHTTP.
func parseIdPMetadata(b []byte, allowHTTP bool, entityID string) (idpSettings, error) {
	if len(b) > MaxMetadataBytes {
		return idpSettings{}, fmt.Errorf("%w: IdP metadata larger than %d bytes", connections.ErrConfig, MaxMetadataBytes)
	}
	b, err := MetadataUTF8(b)
	if err != nil {
		return idpSettings{}, err
	}
	if isHTML(b) {
		// The usual slip: the address of the IdP's admin page, or of a
		// sign-in page it redirected to, instead of the metadata's own.
		return idpSettings{}, fmt.Errorf("%w: this is a web page (HTML), not SAML metadata (XML); give the address of the metadata document itself", connections.ErrConfig)
	}
	if hasDTD(b) {
		return idpSettings{}, fmt.Errorf("%w: IdP metadata must not contain a DTD", connections.ErrConfig)
	}
	ed, err := decodeEntityDescriptor(b, entityID)
	if err != nil {
		return idpSettings{}, err
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return idpSettings{}, fmt.Errorf("%w: IdP metadata has no IDPSSODescriptor", connections.ErrConfig)
	}
	s := idpSettings{EntityID: ed.EntityID}
	var pems []string
	email, persistent := false, false
	for _, d := range ed.IDPSSODescriptors {
		for _, f := range d.NameIDFormats {
			switch strings.TrimSpace(string(f)) {
			case string(saml.EmailAddressNameIDFormat):
				email = true
			case string(saml.PersistentNameIDFormat):
				persistent = true
			}
		}
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			s.WantsSignedRequests = true
		}
		for _, sso := range d.SingleSignOnServices {
			switch {
			case sso.Binding == saml.HTTPRedirectBinding && (s.SSOURL == "" || s.SSOBinding != BindingRedirect):
				s.SSOURL, s.SSOBinding = sso.Location, BindingRedirect
			case sso.Binding == saml.HTTPPostBinding && s.SSOURL == "":
				s.SSOURL, s.SSOBinding = sso.Location, BindingPost
			}
		}
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
				if err != nil {
					return idpSettings{}, fmt.Errorf("%w: IdP metadata certificate is not base64", connections.ErrConfig)
				}
				pems = append(pems, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
			}
		}
	}
	s.EmailNameIDOnly = email && !persistent
	if s.SSOURL == "" {
		return idpSettings{}, fmt.Errorf("%w: IdP metadata has no HTTP-Redirect or HTTP-POST SingleSignOnService", connections.ErrConfig)
	}
	if err := connections.CheckURL("the IdP metadata's SingleSignOnService Location", s.SSOURL, allowHTTP); err != nil {
		// The metadata is to blame, not a field of that name.
		return idpSettings{}, fmt.Errorf("%w: %s", connections.ErrConfig, connections.Message(err))
	}
	s.Certificates, err = parseCertificates(strings.Join(pems, "\n"))
	if err != nil {
		return idpSettings{}, err
	}
	if len(s.Certificates) == 0 {
		return idpSettings{}, fmt.Errorf("%w: IdP metadata has no signing certificate", connections.ErrConfig)
	}
	return s, nil
}

// decodeEntityDescriptor reads an EntityDescriptor, or the IdP entity of an
// EntitiesDescriptor: its only one, or the one whose entityID is entityID
// (a federation publishes all its IdPs in one aggregate, and an admin
// names theirs; without the name, several are refused).
func decodeEntityDescriptor(b []byte, entityID string) (*saml.EntityDescriptor, error) {
	var root struct{ XMLName xml.Name }
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: IdP metadata is empty", connections.ErrConfig)
	}
	if err := xml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%w: IdP metadata is not XML: %v", connections.ErrConfig, err)
	}
	switch root.XMLName.Local {
	case "EntityDescriptor":
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(b, &ed); err != nil {
			return nil, fmt.Errorf("%w: IdP metadata: %v", connections.ErrConfig, err)
		}
		return &ed, nil
	case "EntitiesDescriptor":
		var eds saml.EntitiesDescriptor
		if err := xml.Unmarshal(b, &eds); err != nil {
			return nil, fmt.Errorf("%w: IdP metadata: %v", connections.ErrConfig, err)
		}
		var found *saml.EntityDescriptor
		var idps []*saml.EntityDescriptor
		collectIdPs(&eds, &idps)
		for _, ed := range idps {
			if entityID != "" {
				if ed.EntityID == entityID {
					return ed, nil
				}
				continue
			}
			if found != nil {
				return nil, fmt.Errorf("%w: IdP metadata describes %d IdPs; name yours in idp_entity_id, or paste its one entity", connections.ErrConfig, len(idps))
			}
			found = ed
		}
		if entityID != "" && len(idps) > 0 {
			return nil, fmt.Errorf("%w: IdP metadata describes %d IdPs, none of them %q (idp_entity_id)", connections.ErrConfig, len(idps), entityID)
		}
		if found == nil {
			return nil, fmt.Errorf("%w: IdP metadata has no IdP entity", connections.ErrConfig)
		}
		return found, nil
	default:
		return nil, fmt.Errorf("%w: IdP metadata root is %q, want EntityDescriptor", connections.ErrConfig, root.XMLName.Local)
	}
}

// collectIdPs appends the IdP entities of eds, nested aggregates included
// (federations group their entities by country or kind).
func collectIdPs(eds *saml.EntitiesDescriptor, out *[]*saml.EntityDescriptor) {
	for i := range eds.EntityDescriptors {
		if len(eds.EntityDescriptors[i].IDPSSODescriptors) > 0 {
			*out = append(*out, &eds.EntityDescriptors[i])
		}
	}
	for i := range eds.EntitiesDescriptors {
		collectIdPs(&eds.EntitiesDescriptors[i], out)
	}
}

// fetchIdPMetadata reads metadata from url through the safe client; in an
// aggregate, the IdP entityID names (see decodeEntityDescriptor).
func fetchIdPMetadata(ctx context.Context, deps connections.Deps, url, entityID string) (idpSettings, error) {
	body, err := safehttp.Get(ctx, deps.HTTPClient, url, MaxMetadataBytes)
	if err != nil {
		return idpSettings{}, connections.Unreachable("idp_metadata_url", "fetch IdP metadata from", url, err)
	}
	s, err := parseIdPMetadata(body, deps.AllowInsecureURLs, entityID)
	if err != nil {
		// Say where the metadata that does not parse came from.
		return idpSettings{}, connections.Invalid("idp_metadata_url", "the document at %s is not usable: %s", url, connections.Message(err))
	}
	return s, nil
}

// pemBlock is one -----BEGIN …----- … -----END …----- block, however its
// lines were broken: a PEM copied out of a web page or a one-line input
// loses its line breaks, one pasted from YAML or XML gains indentation.
var pemBlock = regexp.MustCompile(`-----BEGIN ([^-\r\n]+)-----([^-]*)-----END ([^-\r\n]+)-----`)

// parseCertificates reads one or more PEM certificates (a bare base64 DER
// body, as IdP admin consoles often show it, is accepted too), with or
// without their line breaks, indented or not, after a byte-order mark
// (Windows editors save one). Duplicates are dropped.
func parseCertificates(s string) ([]Certificate, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "\ufeff"))
	if s == "" {
		return nil, nil
	}
	var ders [][]byte
	if !strings.Contains(s, "-----BEGIN") {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("%w: idp_certificates_pem is neither PEM nor base64", connections.ErrConfig)
		}
		ders = append(ders, der)
	} else {
		for _, m := range pemBlock.FindAllStringSubmatch(s, -1) {
			if m[1] != "CERTIFICATE" || m[3] != "CERTIFICATE" {
				return nil, fmt.Errorf("%w: idp_certificates_pem holds a %q block, want CERTIFICATE", connections.ErrConfig, m[1])
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[2]), ""))
			if err != nil {
				return nil, fmt.Errorf("%w: an IdP certificate is not valid base64", connections.ErrConfig)
			}
			ders = append(ders, der)
		}
		if strings.TrimSpace(pemBlock.ReplaceAllString(s, "")) != "" {
			return nil, fmt.Errorf("%w: idp_certificates_pem is not a list of PEM certificates", connections.ErrConfig)
		}
	}
	var out []Certificate
	seen := map[string]bool{}
	for _, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: an IdP certificate is not a valid X.509 certificate", connections.ErrConfig)
		}
		sum := sha256.Sum256(cert.Raw)
		fp := hex.EncodeToString(sum[:])
		if seen[fp] {
			continue
		}
		seen[fp] = true
		out = append(out, Certificate{
			PEM:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
			SHA256:   fp,
			Subject:  cert.Subject.String(),
			NotAfter: cert.NotAfter.UTC(),
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: idp_certificates_pem is not a list of PEM certificates", connections.ErrConfig)
	}
	if len(out) > 10 {
		return nil, fmt.Errorf("%w: more than 10 IdP certificates", connections.ErrConfig)
	}
	return out, nil
}

// mergeCertificates keeps the notification state of certificates already
// known, so a refresh does not announce the same expiry twice.
func mergeCertificates(old, fresh []Certificate) []Certificate {
	notified := map[string]bool{}
	for _, c := range old {
		notified[c.SHA256] = c.ExpiringNotified
	}
	for i := range fresh {
		fresh[i].ExpiringNotified = notified[fresh[i].SHA256]
	}
	return fresh
}

func sameCertificates(a, b []Certificate) bool {
	fa, fb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		fa[i] = a[i].SHA256
	}
	for i := range b {
		fb[i] = b[i].SHA256
	}
	sort.Strings(fa)
	sort.Strings(fb)
	return strings.Join(fa, ",") == strings.Join(fb, ",")
}

// newSPKey generates a connection's own SP key (with newKey, when not
// nil) and a self-signed certificate for it: RSA, so that IdPs can
// encrypt assertions to it.
func newSPKey(entityID string, now time.Time, newKey func() (*rsa.PrivateKey, error)) (keyPEM, certPEM string, err error) {
	if newKey == nil {
		newKey = func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }
	}
	key, err := newKey()
	if err != nil {
		return "", "", fmt.Errorf("generate SP key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: entityID},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("self-sign SP certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

func parseSPKey(keyPEM, certPEM string) (*rsa.PrivateKey, *x509.Certificate, error) {
	kb, _ := pem.Decode([]byte(keyPEM))
	cb, _ := pem.Decode([]byte(certPEM))
	if kb == nil || cb == nil {
		return nil, nil, fmt.Errorf("%w: SP key or certificate missing", connections.ErrConfig)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SP key: %v", connections.ErrConfig, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%w: SP key is not RSA", connections.ErrConfig)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SP certificate: %v", connections.ErrConfig, err)
	}
	return rk, cert, nil
}

// idpEntityDescriptor turns resolved settings back into the metadata shape
// the SAML library validates against: every certificate a signing key, so
// that old and new certificates are accepted together during a rollover.
func idpEntityDescriptor(c Config) *saml.EntityDescriptor {
	binding := saml.HTTPRedirectBinding
	if c.IdPSSOBinding == BindingPost {
		binding = saml.HTTPPostBinding
	}
	var kds []saml.KeyDescriptor
	for _, cert := range c.IdPCertificates {
		b, _ := pem.Decode([]byte(cert.PEM))
		if b == nil {
			continue
		}
		kds = append(kds, saml.KeyDescriptor{
			Use: "signing",
			KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
				{Data: base64.StdEncoding.EncodeToString(b.Bytes)},
			}}},
		})
	}
	return &saml.EntityDescriptor{
		EntityID: c.IdPEntityID,
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
				ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
				KeyDescriptors:             kds,
			}},
			SingleSignOnServices: []saml.Endpoint{{Binding: binding, Location: c.IdPSSOURL}},
		}},
	}
}

// xmlDeclaration is a leading XML declaration; declaredEncoding the
// encoding it names.
var (
	xmlDeclaration   = regexp.MustCompile(`^\s*<\?xml\s[^?]*\?>`)
	declaredEncoding = regexp.MustCompile(`\sencoding\s*=\s*["']([^"']*)["']`)
)

// MetadataUTF8 returns IdP metadata as UTF-8, the only encoding Go's XML
// reader takes. A file saved as UTF-16 (Windows' "Unicode", what Windows
// PowerShell's Out-File writes, an AD FS admin's way of saving
// FederationMetadata.xml) is recognised by its byte-order mark; a
// document that declares another encoding (ISO-8859-1, windows-1252,
// US-ASCII: Java and older IdPs) is decoded from it. In both cases the
// XML declaration, which would name the old encoding, is removed. UTF-8
// comes back as it is; an encoding that cannot be decoded is an error
// saying which, for the admin to save the file as UTF-8.
func MetadataUTF8(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.HasPrefix(b, []byte{0xFE, 0xFF}) {
		out, err := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(b)
		if err != nil {
			return nil, fmt.Errorf("%w: IdP metadata starts as UTF-16 but is not: save it as UTF-8", connections.ErrConfig)
		}
		return dropDeclaration(out), nil
	}
	body := bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	decl := xmlDeclaration.Find(body)
	m := declaredEncoding.FindSubmatch(decl)
	if m == nil {
		return b, nil
	}
	enc := string(m[1])
	if strings.EqualFold(enc, "utf-8") || strings.EqualFold(enc, "utf8") {
		return b, nil
	}
	rest := body[len(decl):]
	ascii := true
	for _, c := range rest {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		// Every encoding IdPs declare agrees with UTF-8 on ASCII, which is
		// what metadata is made of.
		return rest, nil
	}
	e, err := ianaindex.IANA.Encoding(enc)
	if err != nil || e == nil {
		return nil, fmt.Errorf("%w: IdP metadata is in the %q character encoding, which is not read here: save it as UTF-8", connections.ErrConfig, truncateID(enc))
	}
	out, err := e.NewDecoder().Bytes(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: IdP metadata is not valid %s: save it as UTF-8", connections.ErrConfig, truncateID(enc))
	}
	return out, nil
}

// dropDeclaration removes a leading XML declaration from UTF-8 input.
func dropDeclaration(b []byte) []byte {
	if m := xmlDeclaration.FindIndex(b); m != nil {
		return b[m[1]:]
	}
	return b
}
