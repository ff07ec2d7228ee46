package saml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"sync"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// deflaters keeps DEFLATE compressors between logins. crewjam's
// HTTP-Redirect encoder makes a new level-9 compressor for every
// AuthnRequest: ~430 KiB of tables allocated, cleared and dropped per
// login, a third of everything a SAML login allocated and ~4 % of its CPU
// with the collector's share. A pooled BestSpeed compressor is reset, not
// reallocated; for a ~700-byte AuthnRequest the output is a few bytes
// longer, well within every IdP's URL limit.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// redirectURL is crewjam's AuthnRequest.Redirect for an unsigned request:
// destination?SAMLRequest=…&RelayState=…, the request serialised the same
// way (etree, the Signature element left out), DEFLATEd and base64
// encoded as the HTTP-Redirect binding requires (saml-bindings-2.0-os
// §3.4.4.1). Signed requests still go through crewjam, which signs the
// query string.
func redirectURL(authn *saml.AuthnRequest, relay string) (*url.URL, error) {
	unsigned := *authn
	unsigned.Signature = nil
	doc := etree.NewDocument()
	doc.SetRoot(unsigned.Element())

	var compressed bytes.Buffer
	fw := deflaters.Get().(*flate.Writer)
	fw.Reset(&compressed)
	_, err := doc.WriteTo(fw)
	if err == nil {
		err = fw.Close()
	}
	// Reset drops the reference to this login's buffer before pooling.
	fw.Reset(nil)
	deflaters.Put(fw)
	if err != nil {
		return nil, fmt.Errorf("deflate AuthnRequest: %w", err)
	}

	u, err := url.Parse(authn.Destination)
	if err != nil {
		return nil, err
	}
	var q strings.Builder
	q.Grow(16 + base64.StdEncoding.EncodedLen(compressed.Len())*2 + len(relay))
	q.WriteString("SAMLRequest=")
	q.WriteString(url.QueryEscape(base64.StdEncoding.EncodeToString(compressed.Bytes())))
	if relay != "" {
		q.WriteString("&RelayState=")
		q.WriteString(url.QueryEscape(relay))
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + q.String()
	} else {
		u.RawQuery = q.String()
	}
	return u, nil
}

// postForm is the auto-submitting form of the HTTP-POST binding, the
// markup of crewjam's AuthnRequest.Post (which parses this template anew
// for every request), parsed once.
var postForm = template.Must(template.New("saml-post-form").Parse(`` +
	`<form method="post" action="{{.URL}}" id="SAMLRequestForm">` +
	`<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}" />` +
	`<input type="hidden" name="RelayState" value="{{.RelayState}}" />` +
	`<input id="SAMLSubmitButton" type="submit" value="Submit" />` +
	`</form>` +
	`<script>document.getElementById('SAMLSubmitButton').style.visibility="hidden";` +
	`document.getElementById('SAMLRequestForm').submit();</script>`))

// postHTML is crewjam's AuthnRequest.Post: the request as it is (with its
// enveloped signature when signed), base64 encoded into postForm.
func postHTML(authn *saml.AuthnRequest, relay string) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(authn.Element())
	xml, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("serialise AuthnRequest: %w", err)
	}
	var out bytes.Buffer
	err = postForm.Execute(&out, struct{ URL, SAMLRequest, RelayState string }{
		URL: authn.Destination, SAMLRequest: base64.StdEncoding.EncodeToString(xml), RelayState: relay})
	if err != nil {
		return nil, fmt.Errorf("AuthnRequest form: %w", err)
	}
	return out.Bytes(), nil
}
