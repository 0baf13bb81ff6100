package dashboard

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

var assetNames = []string{"index.html", "app.js", "serverless.js", "rollout.js", "nodes.js", "style.css"}

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(Assets(), name)
	if err != nil {
		t.Fatalf("read %s from the embedded files: %v", name, err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty", name)
	}
	return string(b)
}

func TestAssetsHoldThePage(t *testing.T) {
	entries, err := fs.ReadDir(Assets(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	for _, name := range assetNames {
		readAsset(t, name)
	}
	if len(got) != len(assetNames) {
		t.Errorf("embedded files are %v, want exactly %v", got, assetNames)
	}

	html := readAsset(t, "index.html")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`<script src="/?app\.js"( defer)?></script>`),
		regexp.MustCompile(`<link rel="stylesheet" href="/?style\.css">`),
	} {
		if !want.MatchString(html) {
			t.Errorf("index.html does not reference its asset: no match for %s", want)
		}
	}
	// Each panel's script comes before app.js, which calls it.
	app := regexp.MustCompile(`<script src="/?app\.js"`).FindStringIndex(html)
	for _, panel := range []string{"serverless", "rollout", "nodes"} {
		at := regexp.MustCompile(`<script src="/?` + panel + `\.js"( defer)?></script>`).FindStringIndex(html)
		if at == nil || app == nil || at[0] > app[0] {
			t.Errorf("index.html does not load %s.js before app.js", panel)
		}
	}
}

// The page must work offline and talk to nothing but its own origin.
func TestAssetsNameNoOtherOrigin(t *testing.T) {
	url := regexp.MustCompile(`(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/`)
	for _, name := range assetNames {
		code := stripComments(name, readAsset(t, name))
		for i, line := range strings.Split(code, "\n") {
			if m := url.FindString(line); m != "" {
				t.Errorf("%s:%d: %q outside a comment: the page may contact only its own origin", name, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// The server sends Content-Security-Policy default-src 'self', which forbids
// inline scripts, inline styles, event-handler attributes and eval.
func TestAssetsObeyTheContentSecurityPolicy(t *testing.T) {
	html := stripComments("index.html", readAsset(t, "index.html"))
	for _, bad := range []struct{ re, why string }{
		{`<script(\s[^>]*)?>\s*[^<\s]`, "an inline script"},
		{`\son[a-z]+\s*=`, "an inline event handler"},
		{`\sstyle\s*=`, "an inline style attribute"},
		{`<style[\s>]`, "an inline style element"},
		{`javascript:`, "a javascript: URL"},
	} {
		if m := regexp.MustCompile(`(?i)` + bad.re).FindString(html); m != "" {
			t.Errorf("index.html has %s: %q", bad.why, m)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, "src=") {
			t.Errorf("index.html has a script without src: %s", tag)
		}
	}
	for _, name := range []string{"app.js", "serverless.js", "rollout.js", "nodes.js"} {
		js := stripComments(name, readAsset(t, name))
		for _, bad := range []string{`eval(`, `new Function(`, `setTimeout('`, `setTimeout("`, `.innerHTML`, `.outerHTML`, `document.write`, `setAttribute('style'`, `setAttribute("style"`} {
			if strings.Contains(js, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
}

// The hooks that tests and people's scripts rely on.
func TestAssetsKeepTheirHooks(t *testing.T) {
	html := readAsset(t, "index.html")
	js := readAsset(t, "app.js") + readAsset(t, "serverless.js") + readAsset(t, "rollout.js") + readAsset(t, "nodes.js")
	all := html + js
	for _, hook := range []string{
		`id="conn"`, `data-state="reconnecting"`, `id="events"`, `aria-live="polite"`,
		`data-action="scale-input"`, `data-action="scale-up"`, `data-action="scale-down"`,
		`data-action="scale-apply"`, `data-action="kill"`, `data-action="pause"`,
		`data-action="unpause"`, `data-action="delete"`, `data-action="policy"`,
		`dataset.group`, `dataset.replica`, `'data-health'`, `'connected'`, `'reconnecting'`,
		// stages, faults and journeys
		`id="story"`, `id="stage"`, `id="stage-picker"`, `dataset.action = 'scenario'`, `dataset.scenario`, `'aria-current'`,
		`id="fault-form"`, `data-action="inject-fault"`, `dataset.action = 'revert-fault'`, `dataset.fault`, `id="faults"`,
		`id="lg-journey"`, `id="journeys"`, `data-step="browse"`, `data-step="deals"`, `data-step="add"`,
		`data-step="cart"`, `data-step="checkout"`, `'data-recent-rate'`,
		// isolation side by side
		`id="compare"`, `data-row="isolation"`, `data-row="kernel"`, `dataset.col`, `class="iso-tag"`,
		// the message bus
		`id="bus"`, `id="bus-flow"`, `id="bus-table"`, `id="bus-dead"`, `dataset.action = 'replay'`, `dataset.seq`, `case 'bus'`,
		// serverless groups
		`id="tpl-fn"`, `class="fn-chart"`, `data-count="cold"`, `'fn-cs'`, `'fn-phase-name'`, `'data-role'`,
		// versions and rollouts
		`id="tpl-rollout"`, `data-action="version"`, `data-action="flaw"`, `data-action="strategy"`,
		`data-action="version-apply"`, `data-action="rollout-pause"`, `data-action="rollout-resume"`,
		`data-action="rollback"`, `class="ver tile-version"`, `'data-version'`, `'data-status'`,
		`/rollout/${verb}`, `/rollback`,
		// nodes
		`id="nodes"`, `id="tpl-node"`, `data-action="node-drain"`, `data-action="node-activate"`, `case 'nodes'`, `/nodes/${enc(n.id)}`,
		`dataset.nodeReplica`, `'data-tile-group'`,
	} {
		if !strings.Contains(all, hook) {
			t.Errorf("the page lost its hook %s", hook)
		}
	}
}

func TestStripComments(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"a.js", "a // b\nc", "a \nc"},
		{"a.js", "x = 'ws://' + y; // see http://a\n", "x = 'ws://' + y; \n"},
		{"a.js", "a /* b\nc */ d", "a \n d"},
		{"a.js", "s = `http://x` // t", "s = `http://x` "},
		{"a.css", "a { /* http://x */ b: c; }", "a {  b: c; }"},
		{"a.css", `a { content: "//" }`, `a { content: "//" }`},
		{"a.html", "<p><!-- http://x\n --></p>", "<p>\n</p>"},
	} {
		if got := stripComments(c.name, c.in); got != c.want {
			t.Errorf("stripComments(%s, %q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// stripComments removes the comments of a JavaScript, CSS or HTML file and
// keeps its newlines, so line numbers stay right. Strings are kept whole:
// in JavaScript 'ws://' is code, not the start of a comment. (A regular
// expression literal holding a quote would confuse it; app.js has none.)
func stripComments(name, src string) string {
	var b strings.Builder
	switch {
	case strings.HasSuffix(name, ".html"):
		for {
			i := strings.Index(src, "<!--")
			if i < 0 {
				b.WriteString(src)
				return b.String()
			}
			b.WriteString(src[:i])
			end := strings.Index(src[i:], "-->")
			if end < 0 {
				end = len(src) - i
			} else {
				end += 3
			}
			b.WriteString(strings.Repeat("\n", strings.Count(src[i:i+end], "\n")))
			src = src[i+end:]
		}
	default:
		lineComments := strings.HasSuffix(name, ".js")
		for i := 0; i < len(src); i++ {
			c := src[i]
			switch {
			case c == '"' || c == '\'' || (c == '`' && lineComments):
				j := i + 1
				for j < len(src) && src[j] != c {
					if src[j] == '\\' {
						j++
					}
					j++
				}
				if j >= len(src) {
					j = len(src) - 1
				}
				b.WriteString(src[i : j+1])
				i = j
			case c == '/' && i+1 < len(src) && src[i+1] == '*':
				end := strings.Index(src[i+2:], "*/")
				if end < 0 {
					end = len(src)
				} else {
					end += i + 4
				}
				b.WriteString(strings.Repeat("\n", strings.Count(src[i:end], "\n")))
				i = end - 1
			case lineComments && c == '/' && i+1 < len(src) && src[i+1] == '/':
				for i < len(src) && src[i] != '\n' {
					i++
				}
				if i < len(src) {
					b.WriteByte('\n')
				}
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
}
