package scim

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Discovery endpoints (RFC 7644 §4). They are per directory only because
// the base URL is; the answers are the same for all. The
// ServiceProviderConfig names no documentationUri (optional, RFC 7643 §5):
// the broker serves no SCIM documentation page, and {issuer}/docs/scim,
// named once, was a 404.

func (s *Server) serviceProviderConfig(c echo.Context) error {
	dir := directoryFrom(c.Request().Context())
	return writeJSON(c, http.StatusOK, map[string]any{
		"schemas":        []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"patch":          map[string]any{"supported": true},
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": s.maxCount},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": true},
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "Directory bearer token", "primary": true,
			"description": "The bearer token shown once when the directory was created or its token rotated.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.BaseURL(dir) + "/ServiceProviderConfig"},
	})
}

func (s *Server) resourceTypeDocs(dir string) []doc {
	return []doc{
		{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":      "User", "name": "User", "endpoint": "/Users", "schema": SchemaUser,
			"schemaExtensions": []any{map[string]any{"schema": SchemaEnterpriseUser, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": s.BaseURL(dir) + "/ResourceTypes/User"},
		},
		{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":      "Group", "name": "Group", "endpoint": "/Groups", "schema": SchemaGroup,
			"meta": map[string]any{"resourceType": "ResourceType", "location": s.BaseURL(dir) + "/ResourceTypes/Group"},
		},
	}
}

func (s *Server) resourceTypes(c echo.Context) error {
	docs := s.resourceTypeDocs(directoryFrom(c.Request().Context()))
	return writeJSON(c, http.StatusOK, listResponse{Schemas: []string{SchemaListResponse}, TotalResults: len(docs), StartIndex: 1, ItemsPerPage: len(docs), Resources: docs})
}

func (s *Server) resourceType(c echo.Context) error {
	for _, d := range s.resourceTypeDocs(directoryFrom(c.Request().Context())) {
		if strings.EqualFold(d["id"].(string), c.Param("id")) {
			return writeJSON(c, http.StatusOK, d)
		}
	}
	return notFound("ResourceType", c.Param("id"))
}

func attr(name, typ string, multi, required bool, mutability string, sub ...map[string]any) map[string]any {
	a := map[string]any{
		"name": name, "type": typ, "multiValued": multi, "required": required, "caseExact": false,
		"mutability": mutability, "returned": "default", "uniqueness": "none",
	}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func (s *Server) schemaDocs(dir string) []doc {
	str := func(n string) map[string]any { return attr(n, "string", false, false, "readWrite") }
	multi := func(n string) map[string]any {
		return attr(n, "complex", true, false, "readWrite", str("value"), str("display"), str("type"), attr("primary", "boolean", false, false, "readWrite"))
	}
	userName := attr("userName", "string", false, true, "readWrite")
	userName["uniqueness"] = "server"
	password := attr("password", "string", false, false, "writeOnly")
	password["returned"] = "never"
	// members is returned by default (RFC 7643 §8.7.1), as the Groups
	// endpoints do: a list leaves it out only when asked to.
	//
	// A member's value is a user's id, and its $ref a URL: both compared
	// case-exactly, as ids are (RFC 7643 §3.1), by filters and PATCH paths
	// (members[value eq "…"]), so /Schemas says caseExact.
	memberValue := str("value")
	memberValue["caseExact"] = true
	memberRef := attr("$ref", "reference", false, false, "immutable")
	memberRef["caseExact"] = true
	members := attr("members", "complex", true, false, "readWrite", memberValue, memberRef, str("type"))
	loc := func(id string) map[string]any {
		return map[string]any{"resourceType": "Schema", "location": s.BaseURL(dir) + "/Schemas/" + id}
	}
	// The User's readOnly groups attribute is left out: a user's groups
	// are never returned (a client reads them from /Groups), and /Schemas
	// lists what this provider does.
	schema := "urn:ietf:params:scim:schemas:core:2.0:Schema"
	return []doc{
		{"schemas": []string{schema}, "id": SchemaUser, "name": "User", "description": "User Account", "meta": loc(SchemaUser),
			"attributes": []any{
				userName, attr("name", "complex", false, false, "readWrite", str("formatted"), str("familyName"), str("givenName"), str("middleName"), str("honorificPrefix"), str("honorificSuffix")),
				str("displayName"), str("nickName"), str("profileUrl"), str("title"), str("userType"), str("preferredLanguage"),
				str("locale"), str("timezone"), attr("active", "boolean", false, false, "readWrite"), password,
				multi("emails"), multi("phoneNumbers"), multi("ims"), multi("photos"),
				attr("addresses", "complex", true, false, "readWrite", str("formatted"), str("streetAddress"), str("locality"), str("region"), str("postalCode"), str("country"), str("type"), attr("primary", "boolean", false, false, "readWrite")),
				multi("entitlements"), multi("roles"), multi("x509Certificates"),
			}},
		{"schemas": []string{schema}, "id": SchemaEnterpriseUser, "name": "EnterpriseUser", "description": "Enterprise User", "meta": loc(SchemaEnterpriseUser),
			"attributes": []any{
				str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
				attr("manager", "complex", false, false, "readWrite", str("value"), attr("$ref", "reference", false, false, "readWrite"), attr("displayName", "string", false, false, "readOnly")),
			}},
		{"schemas": []string{schema}, "id": SchemaGroup, "name": "Group", "description": "Group", "meta": loc(SchemaGroup),
			"attributes": []any{attr("displayName", "string", false, true, "readWrite"), members}},
	}
}

func (s *Server) schemas(c echo.Context) error {
	docs := s.schemaDocs(directoryFrom(c.Request().Context()))
	return writeJSON(c, http.StatusOK, listResponse{Schemas: []string{SchemaListResponse}, TotalResults: len(docs), StartIndex: 1, ItemsPerPage: len(docs), Resources: docs})
}

func (s *Server) schema(c echo.Context) error {
	for _, d := range s.schemaDocs(directoryFrom(c.Request().Context())) {
		if strings.EqualFold(d["id"].(string), c.Param("id")) {
			return writeJSON(c, http.StatusOK, d)
		}
	}
	return notFound("Schema", c.Param("id"))
}
