package vmboot

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseKernelLine(t *testing.T) {
	got, err := Parse("console=ttyS0 quiet panic=-1 flotilla.role=cart flotilla.env=A=1,CATALOG_URL=http%3A%2F%2Fcatalog%3A8080,X=a%2Cb+c%3Dd flotilla.ip=10.0.2.20/24\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Default
	want.Role = "cart"
	want.Env = []string{"A=1", "CATALOG_URL=http://catalog:8080", "X=a,b c=d"}
	want.Addr = netip.MustParsePrefix("10.0.2.20/24")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse("console=ttyS0 root=/dev/sda")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Default) || got.Gateway.String() != "10.0.2.2" || got.DNS.String() != "10.0.2.3" || got.Role != "monolith" {
		t.Errorf("Parse = %+v, want the user-mode network defaults", got)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, line := range []string{
		"flotilla.role=",
		"flotilla.env=NOEQUALS",
		"flotilla.env==v",
		"flotilla.env=A=%zz",
		"flotilla.ip=10.0.2.15",
		"flotilla.ip=fd00::1/64",
		"flotilla.gw=nonsense",
		"flotilla.dns=::1",
		"flotilla.colour=blue",
		"flotilla.probe=yes",
	} {
		if c, err := Parse(line); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", line, c)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	c := Config{
		Role:    "checkout",
		Env:     []string{"FLOTILLA_REPLICA=web-3", "WEIRD=spaces and, commas = and %", "EMPTY="},
		Addr:    netip.MustParsePrefix("10.0.2.15/24"),
		Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS:     netip.MustParseAddr("10.0.2.3"),
	}
	line := Format(c)
	if strings.ContainsAny(line, "\n\t") || len(strings.Fields(line)) != 5 {
		t.Fatalf("Format = %q, want five space-separated parameters", line)
	}
	got, err := Parse("console=ttyS0 " + line)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip = %+v, want %+v", got, c)
	}
}

func FuzzParseFormat(f *testing.F) {
	f.Add("shop", "A=1")
	f.Add("a b", "x,y=z")
	f.Add("flotilla.env=A=%zz,=x flotilla.role=", "")
	f.Fuzz(func(t *testing.T, role, value string) {
		// Any line, as a kernel could be handed it, parses or errs; never panics.
		if c, err := Parse(role + " " + value); err == nil && c.Role == "" {
			t.Fatalf("Parse(%q) accepted an empty role", role+" "+value)
		}
		if role == "" {
			return
		}
		c := Default
		c.Role = role
		c.Env = []string{"K=" + value}
		got, err := Parse(Format(c))
		if err != nil {
			t.Fatalf("Parse(Format) = %v", err)
		}
		if got.Role != role || len(got.Env) != 1 || got.Env[0] != "K="+value {
			t.Fatalf("round trip of %q %q = %+v", role, value, got)
		}
	})
}

func TestReadModuleOrder(t *testing.T) {
	got := ReadModuleOrder("# load order\nvirtio.ko\n\n virtio_ring.ko \nvirtio_net.ko\n")
	want := []string{"virtio.ko", "virtio_ring.ko", "virtio_net.ko"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadModuleOrder = %q, want %q", got, want)
	}
}

func TestProbeRoundTrips(t *testing.T) {
	c := Default
	c.Probe = true
	got, err := Parse(Format(c))
	if err != nil || !got.Probe {
		t.Errorf("Parse(Format(probe)) = %+v, %v; want Probe", got, err)
	}
	if got, _ := Parse(Format(Default)); got.Probe {
		t.Error("a normal boot parsed as a probe")
	}
}

// The container's hostname, the replica's name, reaches the guest; a name
// that is not a hostname is refused on the command line and left out of it.
func TestHostname(t *testing.T) {
	c := Default
	c.Hostname = "shop-vm-1"
	got, err := Parse(Format(c))
	if err != nil || got.Hostname != "shop-vm-1" {
		t.Errorf("Parse(Format(hostname)) = %+v, %v; want shop-vm-1", got, err)
	}
	for _, bad := range []string{"", "-a", "a-", "a b", "a/b", strings.Repeat("a", 65)} {
		if ValidHostname(bad) == nil {
			t.Errorf("ValidHostname(%q) accepted it", bad)
		}
		// A space ends a kernel parameter: "a b" is hostname "a" and a word.
		if _, err := Parse("flotilla.hostname=" + bad); bad != "" && !strings.Contains(bad, " ") && err == nil {
			t.Errorf("Parse accepted hostname %q", bad)
		}
	}
	args, err := QEMUArgs(InImage, []string{"HOSTNAME=shop-vm-2", "FLOTILLA_ROLE=monolith"})
	if err != nil || !strings.Contains(strings.Join(args, " "), "flotilla.hostname=shop-vm-2") {
		t.Errorf("QEMUArgs with HOSTNAME = %q, %v; want the hostname on the command line", args, err)
	}
	args, _ = QEMUArgs(InImage, []string{"HOSTNAME=not a name"})
	if strings.Contains(strings.Join(args, " "), "hostname") {
		t.Errorf("an invalid HOSTNAME reached the command line: %q", args)
	}
}
