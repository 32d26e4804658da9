/**
 * A Traefik local plugin for what Traefik's own middlewares cannot do for a route:
 * - `respond`: answer every request with a fixed status and page (a role in maintenance gets
 *   its 503 page while its containers keep running; Traefik has no middleware that answers
 *   with a body);
 * - `forwarded`: replace the X-Forwarded-* headers a client sent with what Traefik saw (the
 *   client's address, the scheme, the host), as kamal-proxy does for a service that does not
 *   forward headers, on a Traefik that trusts them for others. (Traefik's headers middleware
 *   can only drop X-Forwarded-For, never set it to the client's address.)
 * Local plugins are Go source that Traefik interprets with Yaegi from
 * `./plugins-local/src/<module>/`, with no download; the Traefik handler writes these files
 * on the host and mounts them. Pure: file contents.
 */

/** The module path Traefik loads the plugin by (its `moduleName`); Yaegi finds `New` in the
 * package named after its last element. */
export const PLUGIN_MODULE = "github.com/pulumi-kamal/traefikplugin";

/** The plugin's name in Traefik's configuration (`experimental.localPlugins.<name>`, and a
 * middleware's `plugin.<name>`). */
export const PLUGIN_NAME = "kamal";

/** Where the plugin sources sit inside the Traefik container (Traefik's working directory is /). */
export const PLUGINS_IN_TRAEFIK = "/plugins-local";

/** Where they sit on the host, in the proxy directory (traefikDirs). */
export const PLUGINS_IN_PROXY = "plugins-local";

const MANIFEST = `displayName: Kamal route helpers
type: middleware
import: ${PLUGIN_MODULE}
summary: Answers with a fixed page (maintenance), or sets X-Forwarded-* from what Traefik saw.
testData:
  mode: respond
  status: 503
  body: down for maintenance
  contentType: text/plain; charset=utf-8
`;

const GO_MOD = `module ${PLUGIN_MODULE}

go 1.22
`;

// Only the standard library, in the subset Yaegi interprets.
const SOURCE = `// Package plugin answers with a fixed page, or rewrites X-Forwarded-* headers.
package traefikplugin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// Config is the middleware's dynamic configuration.
type Config struct {
	// Mode is "respond" (a fixed status and body) or "forwarded".
	Mode        string \`json:"mode,omitempty"\`
	Status      int    \`json:"status,omitempty"\`
	Body        string \`json:"body,omitempty"\`
	ContentType string \`json:"contentType,omitempty"\`
}

// CreateConfig returns the defaults: respond 503 with an empty HTML body.
func CreateConfig() *Config {
	return &Config{Mode: "respond", Status: http.StatusServiceUnavailable, ContentType: "text/html; charset=utf-8"}
}

type page struct {
	status      int
	body        []byte
	contentType string
}

type forwarded struct {
	next http.Handler
}

// New builds the handler from its configuration.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	switch config.Mode {
	case "respond", "":
		status := config.Status
		if status < 100 || status > 599 {
			status = http.StatusServiceUnavailable
		}
		return &page{status: status, body: []byte(config.Body), contentType: config.ContentType}, nil
	case "forwarded":
		return &forwarded{next: next}, nil
	default:
		return nil, fmt.Errorf("unknown mode %q", config.Mode)
	}
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", p.contentType)
	h.Set("Content-Length", strconv.Itoa(len(p.body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.status)
	if r.Method != http.MethodHead {
		w.Write(p.body)
	}
}

func (f *forwarded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	scheme, port := "http", "80"
	if r.TLS != nil {
		scheme, port = "https", "443"
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	h := r.Header
	// Without it, Traefik's proxy sets X-Forwarded-For to the client's address alone.
	h.Del("X-Forwarded-For")
	h.Set("X-Real-Ip", client)
	h.Set("X-Forwarded-Proto", scheme)
	h.Set("X-Forwarded-Host", r.Host)
	h.Set("X-Forwarded-Port", port)
	f.next.ServeHTTP(w, r)
}
`;

/** The plugin's files, relative to the plugins directory. */
export function traefikPluginFiles(): { path: string; content: string }[] {
  const dir = `src/${PLUGIN_MODULE}`;
  return [
    { path: `${dir}/.traefik.yml`, content: MANIFEST },
    { path: `${dir}/go.mod`, content: GO_MOD },
    { path: `${dir}/plugin.go`, content: SOURCE },
  ];
}
