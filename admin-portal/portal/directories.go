package portal

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// DirectoryTokenPrefix matches the operator API's, so a token made in
// either place looks the same to secret scanners.
const DirectoryTokenPrefix = "idb_scim"

func (p *Portal) mountDirectories(s *echo.Group) {
	if p.cfg.SCIMBaseURL == nil {
		return
	}
	g := s.Group("/dsync", allow("dsync"))
	g.GET("", p.dirList)
	g.POST("", p.dirCreate)
	d := g.Group("/:dir", p.loadDirectory)
	d.GET("", p.dirShow)
	d.POST("/token", p.dirRotate)
	d.POST("/sign-in-policy", p.dirSignInPolicy)
}

const dirKey = "portal.directory"

func (p *Portal) loadDirectory(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("dir")
		if !store.HasPrefix(id, store.PrefixDirectory) {
			return errNotFound
		}
		d, err := p.cfg.Store.Directory(c.Request().Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		c.Set(dirKey, d)
		return next(c)
	}
}

// dirProvider is an IdP that provisions by SCIM, with its instructions.
type dirProvider struct {
	Key, Name string
	Steps     []step
}

var dirProviders = []dirProvider{
	{Key: "okta", Name: "Okta", Steps: []step{
		{Text: h("In the Okta Admin Console, open the SAML app you use for single sign-on (or ", ui("Applications › Browse App Catalog"), " › ", ui("SCIM 2.0 Test App (Header Auth)"), ").")},
		{Text: h("On the ", ui("General"), " tab, select ", ui("Edit"), " under ", ui("App Settings"), ", set ", ui("Provisioning"), " to ", ui("SCIM"), " and ", ui("Save"), ".")},
		{Text: h("On the ", ui("Provisioning"), " tab, ", ui("Integration"), ", paste the base URL into ", ui("SCIM connector base URL"), ", set ", ui("Unique identifier field for users"), " to ", ui("userName"), ", tick ", ui("Push New Users"), ", ", ui("Push Profile Updates"), " and ", ui("Push Groups"), ", and choose ", ui("HTTP Header"), " authentication with the SCIM token (shown once, at the top of this page, when the directory was created or its token rotated)."), Copy: []string{"base"}},
		{Text: h("Select ", ui("Test Connector Configuration"), ", then ", ui("Save"), ". Under ", ui("To App"), ", enable ", ui("Create Users"), ", ", ui("Update User Attributes"), " and ", ui("Deactivate Users"), ".")},
		{Text: h("Assign people on the ", ui("Assignments"), " tab and groups on ", ui("Push Groups"), ".")},
	}},
	{Key: "entra", Name: "Microsoft Entra ID", Steps: []step{
		{Text: h("In the Microsoft Entra admin center, open ", ui("Entra ID › Enterprise apps"), ", your application (or a new non-gallery one), then ", ui("Provisioning"), ".")},
		{Text: h("Set ", ui("Provisioning Mode"), " to ", ui("Automatic"), ". Under ", ui("Admin Credentials"), ", paste the base URL into ", ui("Tenant URL"), " and the token into ", ui("Secret Token"), ", then ", ui("Test Connection"), " and ", ui("Save"), "."), Copy: []string{"base"}},
		{Text: h("Under ", ui("Users and groups"), ", assign who should be provisioned, then set ", ui("Provisioning Status"), " to ", ui("On"), ". Entra syncs every 40 minutes; ", ui("Provision on demand"), " pushes one user at once.")},
	}},
	{Key: "scim", Name: "Other SCIM 2.0 client", Steps: []step{
		{Text: h("In your identity provider's provisioning settings, choose SCIM 2.0 and paste the base URL."), Copy: []string{"base"}},
		{Text: h("Authenticate with the token as a bearer token: ", ui("Authorization: Bearer <token>"), ".")},
		{Text: h("Push users (", ui("userName"), ", ", ui("emails"), ", ", ui("name"), ", ", ui("active"), ") and groups; deactivating a user signs them out everywhere at once.")},
	}},
}

func dirProviderByKey(key string) dirProvider {
	for _, d := range dirProviders {
		if d.Key == key {
			return d
		}
	}
	return dirProviders[len(dirProviders)-1]
}

type dirRow struct {
	Dir          store.Directory
	Users        int
	Groups       int
	LastActivity time.Time
}

func (p *Portal) dirStats(ctx context.Context, d store.Directory) (dirRow, error) {
	r := dirRow{Dir: d}
	var err error
	if _, r.Users, err = p.cfg.Store.FindUsers(ctx, store.UserQuery{DirectoryID: d.ID, Limit: 1}); err != nil {
		return r, err
	}
	if _, r.Groups, err = p.cfg.Store.FindGroups(ctx, store.GroupQuery{DirectoryID: d.ID, Limit: 1}); err != nil {
		return r, err
	}
	return r, nil
}

func (p *Portal) dirList(c echo.Context) error {
	return p.renderDirList(c, http.StatusOK, "")
}

func (p *Portal) renderDirList(c echo.Context, status int, nameErr string) error {
	return p.renderDirListProblem(c, status, nameErr, "")
}

// renderDirListProblem is renderDirList with an error at the top.
func (p *Portal) renderDirListProblem(c echo.Context, status int, nameErr, problem string) error {
	ctx := c.Request().Context()
	dirs, err := p.cfg.Store.Directories(ctx)
	if err != nil {
		return err
	}
	var rows []dirRow
	for _, d := range dirs {
		r, err := p.dirStats(ctx, d)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	// A form sent back with an error keeps what the admin typed and chose.
	return p.render(c, status, "dsync_list.html", "Directory sync", map[string]any{"Rows": rows, "Providers": dirProviders, "NameError": nameErr,
		"Typed": c.FormValue("name"), "Provider": c.FormValue("provider"), "Seen": newestDirectory(dirs), "Problem": problem})
}

// newestDirectory is the id of the tenant's newest directory, or "-" for
// none: the create form carries it ("seen"), so that the same form sent
// again can be told from a new one.
func newestDirectory(dirs []store.Directory) string {
	newest := "-"
	for _, d := range dirs {
		if newest == "-" || d.ID > newest {
			newest = d.ID
		}
	}
	return newest
}

// createdFromThisForm is a directory named name created after the form
// that says it saw seen (ids sort by creation): the same form, sent again.
func createdFromThisForm(dirs []store.Directory, name, seen string) (store.Directory, bool) {
	for _, d := range dirs {
		if d.Name == name && (seen == "-" || d.ID > seen) {
			return d, true
		}
	}
	return store.Directory{}, false
}

func (p *Portal) dirCreate(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return p.renderDirList(c, http.StatusUnprocessableEntity, "Enter a name of 1 to 200 characters, for example \"Okta\".")
	}
	prov := dirProviderByKey(c.FormValue("provider"))
	// The page that shows a new directory's token answers this form, so
	// reloading it (the browser's "resubmit?") sends the form again: that
	// would make a second directory with a second token. A form naming
	// the newest directory it saw is refused when a directory of its name
	// was made since. A form without it (a client that does not send the
	// page's fields) creates as before.
	if seen := c.FormValue("seen"); seen != "" {
		dirs, err := p.cfg.Store.Directories(c.Request().Context())
		if err != nil {
			return err
		}
		if d, dup := createdFromThisForm(dirs, name, seen); dup {
			return p.renderDirListProblem(c, http.StatusConflict, "", fmt.Sprintf(
				"The directory %q was created already from this form (reloading the page that showed its token sends the form again). "+
					"Nothing was created again. Open it below; rotate its token if you did not copy it.", d.Name))
		}
	}
	token := secrets.NewToken(DirectoryTokenPrefix)
	var d store.Directory
	err := p.cfg.Store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		if d, err = p.cfg.Store.CreateDirectory(ctx, store.Directory{Name: name, TokenHash: secrets.HashToken(token)}); err != nil {
			return err
		}
		return p.audit(ctx, c, "directory.created", store.Resource{Type: "directory", ID: d.ID, Name: d.Name}, map[string]any{"provider": prov.Key})
	})
	if err != nil {
		return err
	}
	return p.renderDirectory(c, d, prov, token)
}

func (p *Portal) dirShow(c echo.Context) error {
	return p.renderDirectory(c, c.Get(dirKey).(store.Directory), dirProviderByKey(c.QueryParam("idp")), "")
}

// keepOldToken are the choices of the rotate form's keep_old field: how
// long the replaced token keeps working, so that the admin can paste the
// new one into the IdP before the old one stops ("" and "0": at once).
var keepOldToken = map[string]time.Duration{"": 0, "0": 0, "3600": time.Hour, "86400": 24 * time.Hour}

// dirRotate replaces the directory's token: the old one stops at once, or
// after the time the form's keep_old chose.
//
// The form names the token it replaces (tokenMark): a form sent again
// (the browser's "resubmit?" on reloading the page that showed the new
// token) names one already replaced, and rotating again would stop the
// token the admin has just pasted into the IdP. It is refused, saying so.
// A form without the mark (a client that does not send the page's
// fields) rotates as before.
func (p *Portal) dirRotate(c echo.Context) error {
	d := c.Get(dirKey).(store.Directory)
	if mark := c.FormValue("replaces"); mark != "" && mark != tokenMark(d) {
		return p.renderDirectoryStatus(c, http.StatusConflict, d, dirProviderByKey(c.FormValue("idp")), "",
			"This token was rotated already, after the page you sent this from was shown (reloading the page that showed the new token sends the form again). "+
				"Nothing was changed: the token in use still works. Rotate again only if you did not copy it.")
	}
	keep, ok := keepOldToken[c.FormValue("keep_old")]
	if !ok {
		return p.renderDirectoryStatus(c, http.StatusBadRequest, d, dirProviderByKey(c.FormValue("idp")), "",
			"Choose how long the current token keeps working from the list. Nothing was changed.")
	}
	token := secrets.NewToken(DirectoryTokenPrefix)
	var until *time.Time
	err := p.cfg.Store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		if until, err = p.cfg.Store.RotateDirectoryToken(ctx, d.ID, secrets.HashToken(token), keep); err != nil {
			return err
		}
		return p.audit(ctx, c, "directory.token_rotated", store.Resource{Type: "directory", ID: d.ID, Name: d.Name},
			map[string]any{"previous_token_expires_at": until})
	})
	if err != nil {
		return err
	}
	d.TokenHash, d.PreviousTokenExpiresAt = secrets.HashToken(token), until
	return p.renderDirectory(c, d, dirProviderByKey(c.FormValue("idp")), token)
}

// tokenMark names a directory's current token without revealing it: a
// short prefix of its hash, which the rotate form carries.
func tokenMark(d store.Directory) string {
	return hex.EncodeToString(d.TokenHash[:min(len(d.TokenHash), 8)])
}

// renderDirectory shows a directory; a token, when just made, is on this
// one page only (answered, never redirected to, and not cached).
func (p *Portal) renderDirectory(c echo.Context, d store.Directory, prov dirProvider, token string) error {
	return p.renderDirectoryStatus(c, http.StatusOK, d, prov, token, "")
}

// renderDirectoryStatus is renderDirectory with a status and an error to
// show at the top.
func (p *Portal) renderDirectoryStatus(c echo.Context, status int, d store.Directory, prov dirProvider, token, problem string) error {
	ctx := c.Request().Context()
	if exp := d.PreviousTokenExpiresAt; exp != nil && !exp.After(time.Now()) {
		d.PreviousTokenExpiresAt = nil // the overlap is over: nothing to say
	}
	stats, err := p.dirStats(ctx, d)
	if err != nil {
		return err
	}
	activity, err := p.cfg.Store.DirectoryActivity(ctx, d.ID, store.ActivityKept)
	if err != nil {
		return err
	}
	if len(activity) > 0 {
		stats.LastActivity = activity[0].CreatedAt
	}
	// What the IdP was answered when its requests failed, newest first:
	// kept by the SCIM server, a few per directory.
	scimErrors, err := p.cfg.Store.SCIMErrors(ctx, d.ID)
	if err != nil {
		return err
	}
	t, err := p.cfg.Store.Tenant(ctx)
	if err != nil {
		return err
	}
	return p.render(c, status, "dsync_show.html", d.Name, map[string]any{
		"Policy": string(t.SignInPolicy),
		"Dir":    d, "Stats": stats, "Provider": prov, "Providers": dirProviders, "Token": token, "TokenMark": tokenMark(d), "Problem": problem,
		"BaseURL": p.cfg.SCIMBaseURL(d.ID), "Activity": activity, "Errors": scimErrors, "ErrorsKept": store.SCIMErrorsKept,
	})
}

// dirSignInPolicy sets the tenant's sign-in policy from a directory's page:
// the tenant's IT admin lets only the people their directories provisioned
// sign in (store.SignInDirectoryUsers), or anyone their IdP lets through
// again. It is turned on only from a directory that has pushed users, so
// that an admin cannot shut their organisation out before their directory
// has provisioned anyone. The change is the tenant's tenant.updated audit
// row, as the operator API's is.
func (p *Portal) dirSignInPolicy(c echo.Context) error {
	d := c.Get(dirKey).(store.Directory)
	prov := dirProviderByKey(c.FormValue("idp"))
	policy := store.SignInPolicy(c.FormValue("policy"))
	if !policy.Valid() {
		return p.renderDirectoryStatus(c, http.StatusBadRequest, d, prov, "", "Choose who may sign in. Nothing was changed.")
	}
	ctx := c.Request().Context()
	if policy == store.SignInDirectoryUsers {
		if _, n, err := p.cfg.Store.FindUsers(ctx, store.UserQuery{DirectoryID: d.ID, Limit: 1}); err != nil {
			return err
		} else if n == 0 {
			return p.renderDirectoryStatus(c, http.StatusConflict, d, prov, "",
				"This directory has not provisioned anyone yet: with only directory users allowed, nobody could sign in. "+
					"Set up provisioning in your identity provider first. Nothing was changed.")
		}
	}
	err := p.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		// Read in the transaction (the row locked): the change audited
		// is the one made.
		cur, err := p.cfg.Store.Tenant(ctx)
		if err != nil {
			return err
		}
		from := cur.SignInPolicy
		if from == policy {
			return nil // sent again: nothing to change or audit
		}
		t, err := p.cfg.Store.UpdateTenant(ctx, store.TenantUpdate{SignInPolicy: &policy})
		if err != nil {
			return err
		}
		return p.audit(ctx, c, "tenant.updated", store.Resource{Type: "tenant", ID: t.ID, Name: t.Name}, map[string]any{
			"changes":      map[string]any{"sign_in_policy": map[string]any{"from": from, "to": policy}},
			"directory_id": d.ID,
		})
	})
	if err != nil {
		return err
	}
	return p.renderDirectory(c, d, prov, "")
}
