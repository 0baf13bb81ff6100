package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/spec"
)

func TestGroupsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Group{Name: "shop", Service: "monolith", Replicas: 3, Resources: spec.DefaultResources}
	if err := s.PutGroup(want); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGroup(spec.Group{Name: "gone", Service: "cart"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup("gone"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Groups()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Equal(want) {
		t.Fatalf("groups after reopen = %+v, want [%+v]", got, want)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestInstanceIDIsStable(t *testing.T) {
	dir := t.TempDir()
	a, err := InstanceID(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := InstanceID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || len(a) != 36 {
		t.Fatalf("instance ids %q, %q: want the same UUID twice", a, b)
	}
	if c, _ := InstanceID(t.TempDir()); c == a {
		t.Fatalf("two state directories share instance id %q", a)
	}
}

func TestBusSecretIsStableAndPrivate(t *testing.T) {
	dir := t.TempDir()
	a, err := BusSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BusSecret(dir)
	if err != nil || a != b || len(a) != 64 {
		t.Fatalf("secrets %q then %q (%v); want one stable 64-hex-digit secret", a, b, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "bus-secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bus-secret: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if other, _ := BusSecret(t.TempDir()); other == a {
		t.Error("two state directories share a secret")
	}
	if err := os.WriteFile(filepath.Join(dir, "bus-secret"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := BusSecret(dir); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Errorf("a damaged secret: err = %v", err)
	}
}
