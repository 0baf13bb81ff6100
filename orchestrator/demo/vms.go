package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
)

// The stage 5 groups, one per isolation kind, in the order they are shown.
var kinds = []struct{ group, kind string }{
	{"shop-container", "container"},
	{"shop-pod", "pod"},
	{"shop-vm", "vm"},
}

// idleFor is how long the replicas are left without traffic before their
// CPU is read: the engine samples every other second.
const idleFor = 6 * time.Second

// vms runs the same shop as a container, a pod and a virtual machine, and
// measures what each costs and what each sees.
func vms(ctx context.Context, r *run) error {
	host, err := hostView()
	if err != nil {
		return err
	}
	r.say("The same shop three ways: shop-container (one container), shop-pod (the shop and a metrics agent")
	r.say("sharing one network, process and IPC namespace) and shop-vm (a virtual machine: QEMU in a container,")
	r.say("booting its own Linux kernel). This machine runs kernel %s with %s of memory.", host.Kernel, kib(host.MemTotalKiB))
	r.look("the comparison table beside the tiles fills in as each replica answers.")

	began := time.Now()
	firsts := r.firstAnswers(ctx, began)
	if err := r.scenario(ctx, "vms-vs-containers"); err != nil {
		return err
	}
	first := firsts()

	r.say("")
	r.say("1. Start: from applying the stage to each replica's first 200 (measured here, all three starting at once):")
	for _, k := range kinds {
		st, err := r.group(ctx, k.group)
		if err != nil {
			return err
		}
		note := ""
		if k.kind == "vm" {
			note = fmt.Sprintf(" (accelerator %s)", accelName(st.Accel))
		}
		r.say("   %-15s %7s; the controller measured %s from its create call to ready%s", k.group, seconds(first[k.group]), millis(startupOf(st)), note)
	}
	ct, vm := first["shop-container"], first["shop-vm"]
	r.check(ct > 0 && vm > 2*ct, "the VM took longer to first answer than the container (%s against %s): it boots a kernel first", seconds(vm), seconds(ct))

	r.say("")
	r.say("2. Memory and idle CPU, from the engine's stats after %s without traffic:", idleFor)
	if err := sleep(ctx, idleFor); err != nil {
		return err
	}
	use, err := r.usage(ctx)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		u := use[k.group]
		r.say("   %-15s %8s, %5.1f%% of a core", k.group, mib(u.MemBytes), u.CPUPercent)
	}
	cm, pm, vmm := use["shop-container"].MemBytes, use["shop-pod"].MemBytes, use["shop-vm"].MemBytes
	r.check(cm > 0 && pm > cm, "the pod costs more than the container (%s against %s): it runs three processes", mib(pm), mib(cm))
	r.check(cm > 0 && vmm > 10*cm, "the VM costs over ten times the container's memory (%s against %s): a guest kernel and QEMU", mib(vmm), mib(cm))
	idle := true
	for _, k := range kinds {
		if use[k.group].CPUPercent >= 10 {
			idle = false
		}
	}
	r.check(idle, "all three idle near zero: %.1f%%, %.1f%% and %.1f%% of a core", use["shop-container"].CPUPercent, use["shop-pod"].CPUPercent, use["shop-vm"].CPUPercent)

	r.say("")
	r.say("3. What each replica sees of its machine (its GET /diag):")
	views := map[string]controller.MachineView{}
	for _, k := range kinds {
		v, err := r.diagOf(ctx, k.group)
		if err != nil {
			return err
		}
		views[k.group] = v
		r.say("   %-15s kernel %s, %s of memory, %s, hostname %s", k.group, v.Kernel, kib(v.MemTotalKiB), plural(v.Processes, "process", "processes"), v.Hostname)
	}
	c, p, v := views["shop-container"], views["shop-pod"], views["shop-vm"]
	r.check(c.Kernel == host.Kernel && p.Kernel == host.Kernel, "the container and the pod run on the host's kernel %s", host.Kernel)
	r.check(v.Kernel != "" && v.Kernel != host.Kernel, "the VM runs a kernel of its own: %s", v.Kernel)
	r.check(c.MemTotalKiB == host.MemTotalKiB && v.MemTotalKiB > 0 && v.MemTotalKiB < host.MemTotalKiB/8,
		"the container sees all of the host's memory (%s; its limit is enforced from outside), the VM only its own %s", kib(c.MemTotalKiB), kib(v.MemTotalKiB))
	r.check(c.Processes == 1, "the container sees one process: its own (%d)", c.Processes)
	r.check(p.Processes >= 3, "the pod's shop sees its neighbours too: init, pause, shop and agent (%d processes)", p.Processes)
	r.check(v.Processes > p.Processes, "the VM's shop sees a whole machine's processes, its guest kernel's threads among them (%d)", v.Processes)

	r.say("")
	r.say("4. A crash: the next /deals request to shop-vm panics the shop, PID 1 of its guest.")
	r.say("   Meanwhile 40 GETs a second go to shop-container and to shop-pod.")
	r.look("shop-vm-1 dies and boots again; shop-container and shop-pod stay green.")
	var loads []string
	for _, g := range []string{"shop-container", "shop-pod"} {
		id, err := r.startLoad(ctx, map[string]any{"group": g, "rate": 40, "duration": "2m", "paths": []string{"/catalog"}, "concurrency": 8})
		if err != nil {
			return err
		}
		loads = append(loads, id)
	}
	st, err := r.group(ctx, "shop-vm")
	if err != nil {
		return err
	}
	victim := st.Replicas[0]
	before := map[string]int64{}
	for i, id := range loads {
		rep, err := r.report(ctx, id)
		if err != nil {
			return err
		}
		before[loads[i]] = rep.Failed
	}
	f, err := r.inject(ctx, faults.Spec{Kind: faults.CrashFeature, Group: "shop-vm", Feature: "deals"})
	if err != nil {
		return err
	}
	r.say("GET /deals on shop-vm's balancer at %s.", st.Endpoint)
	getOnce(ctx, st.Endpoint, "/deals")
	var after controller.ReplicaStatus
	died := waitFor(ctx, time.Minute, func() (bool, error) {
		st, err := r.group(ctx, "shop-vm")
		if err != nil {
			return false, err
		}
		for _, rep := range st.Replicas {
			if rep.Name == victim.Name && rep.ID != victim.ID {
				after = rep
				return true, nil
			}
		}
		return false, nil
	})
	// The fault would be re-applied to the new VM once ready; nothing
	// sends it /deals, and it is reverted before that.
	if err := r.revert(ctx, f.ID); err != nil {
		return err
	}
	r.check(died == nil, "%s died and the controller is booting a new VM in its place", victim.Name)
	code := -1
	if after.LastExitCode != nil {
		code = *after.LastExitCode
	}
	r.check(code == 1, "its container exited with code 1 (%d): QEMU's panic device turns a guest kernel panic into a failure exit", code)
	panicLine := ""
	for _, l := range after.LastWords {
		if strings.Contains(l, "Kernel panic") {
			panicLine = strings.TrimSpace(l)
		}
	}
	r.say("The last lines of its console, which the controller kept before removing it:")
	for _, l := range after.LastWords {
		r.say("   | %s", l)
	}
	r.check(panicLine != "", "the guest's own kernel panicked, not the host's: %q", panicLine)
	if err := r.converged(ctx, 2*time.Minute); err != nil {
		return err
	}
	getOnce(ctx, st.Endpoint, "/catalog")
	var sent, failed int64
	for _, id := range loads {
		rep, err := r.report(ctx, id)
		if err != nil {
			return err
		}
		sent += rep.Sent
		failed += rep.Failed - before[id]
	}
	r.check(sent > 0 && failed == 0, "shop-container and shop-pod went on answering: %d GETs, %d failed since the crash", sent, failed)
	vst, err := r.group(ctx, "shop-vm")
	if err != nil {
		return err
	}
	r.check(vst.Ready == vst.Desired, "shop-vm is back: %d/%d ready, %s", vst.Ready, vst.Desired, millis(startupOf(vst)))

	r.say("")
	r.say("When to choose which: a container by default (fast, small, one process); a pod when a helper must share")
	r.say("the service's localhost and lifetime; a VM when you need a kernel of your own or a harder wall between")
	r.say("tenants, and can pay for it in start time and memory.")
	return nil
}

// firstAnswers watches, from now on, each stage 5 group's first replica and
// times its first 200 to GET /catalog at its own 127.0.0.1 address, from
// began. The returned function waits for the watches (up to 2 minutes) and
// returns the times by group; a group that never answered is missing.
func (r *run) firstAnswers(ctx context.Context, began time.Time) func() map[string]time.Duration {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]time.Duration{}
	)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	client := &http.Client{Timeout: time.Second}
	for _, k := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if st, err := r.api.Group(ctx, k.group); err == nil && len(st.Replicas) > 0 && st.Replicas[0].Address != "" {
					if ok := answers(ctx, client, st.Replicas[0].Address); ok {
						mu.Lock()
						out[k.group] = time.Since(began)
						mu.Unlock()
						return
					}
				}
				sleep(ctx, 10*time.Millisecond)
			}
		}()
	}
	return func() map[string]time.Duration {
		wg.Wait()
		cancel()
		return out
	}
}

func answers(ctx context.Context, client *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/catalog", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// getOnce sends one GET and ignores what comes back: for a request whose
// effect is the lesson.
func getOnce(ctx context.Context, addr, path string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil); err == nil {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
	}
}

// usage is the engine's latest figures of each stage 5 group's first
// replica, waiting up to 20 s for each to have been sampled twice.
func (r *run) usage(ctx context.Context) (map[string]controller.ReplicaStats, error) {
	out := map[string]controller.ReplicaStats{}
	err := waitFor(ctx, 20*time.Second, func() (bool, error) {
		stats, err := r.api.Stats(ctx)
		if err != nil {
			return false, err
		}
		for _, k := range kinds {
			s, ok := stats[k.group+"-1"]
			if !ok || s.MemBytes == 0 {
				return false, nil
			}
			out[k.group] = s
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("the engine's stats of the stage 5 replicas: %w", err)
	}
	return out, nil
}

// diagOf is what a group's first replica sees, from its own GET /diag at
// its 127.0.0.1 address.
func (r *run) diagOf(ctx context.Context, group string) (controller.MachineView, error) {
	var v controller.MachineView
	st, err := r.group(ctx, group)
	if err != nil {
		return v, err
	}
	if len(st.Replicas) == 0 || st.Replicas[0].Address == "" {
		return v, fmt.Errorf("group %s has no running replica to ask", group)
	}
	if err := getJSON(ctx, st.Replicas[0].Address, "/diag", &v); err != nil {
		return v, fmt.Errorf("GET /diag of %s: %w", st.Replicas[0].Name, err)
	}
	return v, nil
}

// hostView is what this process sees of the machine it runs on: the
// machine whose engine runs the replicas, since the API is on 127.0.0.1.
func hostView() (controller.MachineView, error) {
	var v controller.MachineView
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return v, fmt.Errorf("the host's kernel release: %w", err)
	}
	v.Kernel = strings.TrimSpace(string(b))
	m, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return v, fmt.Errorf("the host's memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(m))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			v.MemTotalKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return v, nil
}

// startupOf is the controller's start-up figure of a group's first replica.
func startupOf(st controller.GroupStatus) time.Duration {
	if len(st.Replicas) == 0 {
		return 0
	}
	return time.Duration(st.Replicas[0].StartupMs) * time.Millisecond
}

func accelName(a string) string {
	switch a {
	case "tcg":
		return "TCG: every guest instruction emulated in software"
	case "kvm":
		return "KVM: the CPU runs the guest"
	}
	return "unknown"
}

func seconds(d time.Duration) string {
	if d <= 0 {
		return "no answer"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func millis(d time.Duration) string {
	if d <= 0 {
		return "not measured"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func kib(k int64) string {
	if k >= 1<<20 {
		return fmt.Sprintf("%.1f GiB", float64(k)/(1<<20))
	}
	return fmt.Sprintf("%d MiB", k>>10)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
