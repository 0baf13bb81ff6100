package dashboard_test

// The isolation comparison of stage 5: groups of more than one isolation
// kind (container, pod, vm) side by side in one table, with what each
// replica costs and sees.

import (
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// isoGroup is a converged group of n ready replicas of the shop, each a
// replica of the given isolation kind; a vm group's guests are emulated.
func isoGroup(name, kind string, n int) controller.GroupStatus {
	g := makeGroup(name, "monolith", "round-robin", n)
	g.Isolation = kind
	if kind == spec.IsolationVM {
		g.Accel = "tcg"
	}
	return g
}

// hostView is what a container or pod replica sees of the machine: the
// host's kernel, memory and CPUs, and its own few processes.
func hostView(hostname string, processes int) *controller.MachineView {
	return &controller.MachineView{Kernel: "6.1.0-28-amd64", Hostname: hostname, MemTotalKiB: 16318412, Processes: processes, CPUs: 2}
}

const mib = 1 << 20

// compareColumn is one group's column of the comparison, by row name.
type compareColumn map[string]string

func readCompare(b *dashboard.Browser) map[string]compareColumn {
	var cols map[string]compareColumn
	b.Eval(`(() => {
		const out = {};
		for (const tr of document.querySelectorAll('#compare tbody tr')) {
			for (const td of tr.querySelectorAll('td')) {
				(out[td.dataset.col] = out[td.dataset.col] || {})[tr.dataset.row] = td.textContent;
			}
		}
		return out;
	})()`, &cols)
	return cols
}

func TestBrowserIsolationSideBySide(t *testing.T) {
	b := dashboard.NewBrowser(t)

	ctr := isoGroup("shop-container", spec.IsolationContainer, 2)
	ctr.Replicas[0].StartupMs, ctr.Replicas[0].Sees = 300, hostView("shop-container-1", 1)
	ctr.Replicas[1].StartupMs, ctr.Replicas[1].Sees = 500, hostView("shop-container-2", 1)
	pod := isoGroup("shop-pod", spec.IsolationPod, 1)
	pod.Replicas[0].StartupMs, pod.Replicas[0].Sees = 650, hostView("shop-pod-1", 3)
	// The VM is still booting: nothing is known of it but that it runs.
	vm := isoGroup("shop-vm", spec.IsolationVM, 1)
	vm.Status, vm.Ready = "starting", 0
	vm.Replicas[0].Health = "starting"

	f := newFakeController(t, vm, ctr, pod)
	f.fixStats("shop-container-1", controller.ReplicaStats{Group: "shop-container", CPUPercent: 0.2, MemBytes: 7 * mib, MemLimitBytes: 64 * mib})
	f.fixStats("shop-container-2", controller.ReplicaStats{Group: "shop-container", CPUPercent: 0.4, MemBytes: 9 * mib, MemLimitBytes: 64 * mib})
	f.fixStats("shop-pod-1", controller.ReplicaStats{Group: "shop-pod", CPUPercent: 0.6, MemBytes: 12.5 * mib, MemLimitBytes: 64 * mib})
	// A replica's first sample has no usage yet.
	f.fixStats("shop-vm-1", controller.ReplicaStats{Group: "shop-vm"})

	f.open(b)
	b.WaitFor("the comparison's figures", `!document.querySelector('#compare').hidden &&
		(document.querySelector('#compare tr[data-row="mem"] td[data-col="shop-pod"]') || {}).textContent === '12.5 MiB'`, 0)

	// One column per group, container first, then pod, then vm, each
	// headed by its group's name.
	var heads []string
	b.Eval(`[...document.querySelectorAll('#compare thead th')].map(th => th.scope + ':' + th.textContent)`, &heads)
	if want := []string{"col:shop-container", "col:shop-pod", "col:shop-vm"}; !slices.Equal(heads, want) {
		t.Errorf("the comparison's columns: %q, want %q", heads, want)
	}
	want := map[string]compareColumn{
		"shop-container": {"isolation": "container", "startup": "400 ms", "mem": "8.0 MiB", "cpu": "0.3%",
			"kernel": "6.1.0-28-amd64the host's", "memTotal": "15.6 GiB", "cpus": "2", "procs": "1", "ready": "2 / 2"},
		"shop-pod": {"isolation": "pod", "startup": "650 ms", "mem": "12.5 MiB", "cpu": "0.6%",
			"kernel": "6.1.0-28-amd64the host's", "memTotal": "15.6 GiB", "cpus": "2", "procs": "3", "ready": "1 / 1"},
		"shop-vm": {"isolation": "vm (TCG, emulated)", "startup": "…", "mem": "…", "cpu": "…",
			"kernel": "…", "memTotal": "…", "cpus": "…", "procs": "…", "ready": "0 / 1"},
	}
	checkCompare := func(when string) {
		t.Helper()
		got := readCompare(b)
		for group, cols := range want {
			for row, v := range cols {
				if got[group][row] != v {
					t.Errorf("%s: the comparison shows %q for %s of %s, want %q", when, got[group][row], row, group, v)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: the comparison has columns %v, want %d", when, slices.Sorted(maps.Keys(got)), len(want))
		}
	}
	checkCompare("while the VM boots")
	var unknown int
	b.Eval(`document.querySelectorAll('#compare td[data-col="shop-vm"][data-unknown]').length`, &unknown)
	if unknown != 7 {
		t.Errorf("%d of the VM's cells are marked unknown, want 7 (all but isolation and ready)", unknown)
	}

	// A real table a screen reader can walk: a caption, and headers of
	// columns and rows.
	var shape struct {
		Caption                  string
		RowHeads, Rows, ColHeads int
		Labelled                 string
	}
	b.Eval(`(() => { const t = document.querySelector('#compare table'); return {
		caption: t.caption ? t.caption.textContent : '',
		rowHeads: t.querySelectorAll('tbody th[scope="row"]').length,
		rows: t.tBodies[0].rows.length,
		colHeads: t.querySelectorAll('thead th[scope="col"]').length,
		labelled: document.getElementById(document.querySelector('#compare').getAttribute('aria-labelledby')).textContent,
	}; })()`, &shape)
	if shape.Caption == "" || shape.RowHeads != shape.Rows || shape.Rows != 9 || shape.ColHeads != 3 || shape.Labelled != "Isolation side by side" {
		t.Errorf("the comparison table: %+v; want a caption, 9 rows each headed by a th scope=row, 3 th scope=col, and a heading", shape)
	}
	var when string
	b.Eval(`document.querySelector('#compare .compare-when').innerText`, &when)
	for _, s := range []string{"Container", "default", "Pod", "localhost and lifetime", "VM", "different kernel", "harder wall", "start time and memory"} {
		if !strings.Contains(when, s) {
			t.Errorf("the advice on when to choose which lacks %q: %q", s, when)
		}
	}

	// The cards say what a replica is; a plain container needs no word.
	var tags []string
	b.Eval(`['shop-container', 'shop-pod', 'shop-vm'].map(n => { const e = document.querySelector('[data-group="' + n + '"] .iso-tag'); return e.hidden ? '' : e.textContent; })`, &tags)
	if want := []string{"", "pod", "vm · TCG"}; !slices.Equal(tags, want) {
		t.Errorf("the cards' isolation tags: %q, want %q", tags, want)
	}

	// The VM is up: its start time, its own kernel and memory and its
	// processes arrive with its status, its usage with the stats. The cells
	// are patched, not built anew.
	b.Eval(`document.querySelectorAll('#compare td, #compare th').forEach(e => { e._testMark = true; }), true`, nil)
	vm.Status, vm.Ready = "converged", 1
	vm.Replicas[0].Health = "ready"
	vm.Replicas[0].StartupMs = 4800
	vm.Replicas[0].Sees = &controller.MachineView{Kernel: "6.6.58-flotilla", Hostname: "shop-vm-1", MemTotalKiB: 245000, Processes: 61, CPUs: 1}
	f.pushGroup(vm)
	f.fixStats("shop-vm-1", controller.ReplicaStats{Group: "shop-vm", CPUPercent: 3.5, MemBytes: 180 * mib, MemLimitBytes: 320 * mib})
	b.WaitFor("the VM's figures", `document.querySelector('#compare tr[data-row="mem"] td[data-col="shop-vm"]').textContent === '180 MiB' &&
		document.querySelector('#compare tr[data-row="startup"] td[data-col="shop-vm"]').textContent === '4.8 s'`, 0)
	want["shop-vm"] = compareColumn{"isolation": "vm (TCG, emulated)", "startup": "4.8 s", "mem": "180 MiB", "cpu": "3.5%",
		"kernel": "6.6.58-flotillaits own", "memTotal": "239 MiB", "cpus": "1", "procs": "61", "ready": "1 / 1"}
	checkCompare("once the VM is ready")

	// Stats change: the medians follow.
	f.fixStats("shop-container-1", controller.ReplicaStats{Group: "shop-container", CPUPercent: 1.2, MemBytes: 11 * mib, MemLimitBytes: 64 * mib})
	b.WaitFor("the container's new memory", `document.querySelector('#compare tr[data-row="mem"] td[data-col="shop-container"]').textContent === '10.0 MiB'`, 0)
	want["shop-container"]["mem"], want["shop-container"]["cpu"] = "10.0 MiB", "0.8%"
	checkCompare("after new stats")
	// The corner, 3 column heads, 9 row heads and 27 figures.
	var marks struct{ Marked, All int }
	b.Eval(`(() => { const all = [...document.querySelectorAll('#compare td, #compare th')]; return {marked: all.filter(e => e._testMark).length, all: all.length}; })()`, &marks)
	if marks.All != 1+3+9+3*9 || marks.Marked != marks.All {
		t.Errorf("%d of %d cells of the comparison survived the updates, want all %d", marks.Marked, marks.All, 1+3+9+3*9)
	}

	// Readable in both themes: text against the panel at 4.5:1 or more.
	for _, scheme := range []string{"light", "dark"} {
		b.SetColorScheme(scheme)
		var colors struct{ Panel, Cell, RowHead, Unknown, Note, NoteBg, Advice string }
		b.Eval(`(() => { const c = (sel) => getComputedStyle(document.querySelector(sel)).color; return {
			panel: getComputedStyle(document.querySelector('#compare')).backgroundColor,
			cell: c('#compare tr[data-row="mem"] td'),
			rowHead: c('#compare tbody th'),
			unknown: c('#compare caption'),
			note: c('#compare td[data-kernel="own"] .cmp-note'),
			noteBg: getComputedStyle(document.querySelector('#compare td[data-kernel="own"] .cmp-note')).backgroundColor,
			advice: c('#compare .when-list dd'),
		}; })()`, &colors)
		for what, fg := range map[string]string{"a figure": colors.Cell, "a row's heading": colors.RowHead, "the caption": colors.Unknown, "the advice": colors.Advice} {
			if r := contrast(t, fg, colors.Panel); r < 4.5 {
				t.Errorf("%s theme: %s (%s on %s) has contrast %.2f, want 4.5 or more", scheme, what, fg, colors.Panel, r)
			}
		}
		if r := contrast(t, colors.Note, colors.NoteBg); r < 4.5 {
			t.Errorf("%s theme: the note that the VM's kernel is its own (%s on %s) has contrast %.2f, want 4.5 or more", scheme, colors.Note, colors.NoteBg, r)
		}
		b.Screenshot("isolation-side-by-side-" + scheme)
	}
	b.SetColorScheme("")

	// Changing the VM group's balancer sends its whole spec back: it stays
	// a VM.
	b.Select(`[data-group="shop-vm"] [data-action="policy"]`, "least-connections")
	requireJSON(t, f.waitCall("PUT", "/api/v1/groups/shop-vm"),
		`{"service":"monolith","replicas":1,"isolation":"vm","resources":{"memoryMiB":64,"milliCPU":500,"pids":64},"balancer":{"policy":"least-connections"}}`)
	if g, ok := f.fake.Spec("shop-vm"); !ok || g.Isolation != spec.IsolationVM {
		t.Errorf("after the policy change shop-vm is %+v, want still a vm", g)
	}

	// A group being deleted has no spec left, so no isolation: it leaves
	// the table rather than pass for a container.
	gone := isoGroup("shop-vm", "", 1)
	gone.Status, gone.Desired, gone.Ready = "deleting", 0, 0
	f.pushGroup(gone)
	b.WaitFor("the deleted VM out of the table", `document.querySelectorAll('#compare thead th').length === 2`, 0)
	b.Eval(`[...document.querySelectorAll('#compare thead th')].map(th => th.scope + ':' + th.textContent)`, &heads)
	if want := []string{"col:shop-container", "col:shop-pod"}; !slices.Equal(heads, want) {
		t.Errorf("the comparison's columns while shop-vm is deleted: %q, want %q", heads, want)
	}

	// Down to one kind, nothing to compare: the table goes. A second kind
	// brings it back.
	for _, name := range []string{"shop-pod", "shop-vm"} {
		if err := f.fake.DeleteGroup(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	b.WaitFor("the pod and VM cards to go", `document.querySelectorAll('[data-group="shop-pod"], [data-group="shop-vm"]').length === 0`, 0)
	b.WaitFor("the comparison to hide", `document.querySelector('#compare').hidden`, 0)
	f.pushGroup(isoGroup("sidecar", spec.IsolationPod, 2))
	b.WaitFor("the comparison back", `!document.querySelector('#compare').hidden`, 0)
	b.Eval(`[...document.querySelectorAll('#compare thead th')].map(th => th.scope + ':' + th.textContent)`, &heads)
	if want := []string{"col:shop-container", "col:sidecar"}; !slices.Equal(heads, want) {
		t.Errorf("the comparison's columns: %q, want %q", heads, want)
	}
	var rowCells int
	b.Eval(`Math.max(...[...document.querySelectorAll('#compare tbody tr')].map(tr => tr.cells.length))`, &rowCells)
	if rowCells != 3 {
		t.Errorf("a row of the comparison has up to %d cells, want 3 (its heading and two groups)", rowCells)
	}

	b.CheckPage(f.srv.URL)
}

// contrast is the WCAG contrast ratio of two CSS colours as
// getComputedStyle gives them ("rgb(r, g, b)" or "rgba(r, g, b, a)"; an
// alpha below 1 is not expected here).
func contrast(t *testing.T, a, b string) float64 {
	t.Helper()
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(t *testing.T, css string) float64 {
	t.Helper()
	inner := strings.TrimSuffix(css[strings.IndexByte(css, '(')+1:], ")")
	parts := strings.Split(inner, ",")
	if len(parts) < 3 {
		t.Fatalf("not an rgb colour: %q", css)
	}
	var ch [3]float64
	for i := range ch {
		v, err := strconv.ParseFloat(strings.TrimSpace(parts[i]), 64)
		if err != nil {
			t.Fatalf("colour %q: %v", css, err)
		}
		v /= 255
		if v <= 0.04045 {
			ch[i] = v / 12.92
		} else {
			ch[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	if len(parts) == 4 {
		if a, _ := strconv.ParseFloat(strings.TrimSpace(parts[3]), 64); a < 1 {
			t.Fatalf("colour %q is translucent: its contrast depends on what is under it", css)
		}
	}
	return 0.2126*ch[0] + 0.7152*ch[1] + 0.0722*ch[2]
}
