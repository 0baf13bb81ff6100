package store

import (
	"errors"
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
	if len(got) != 1 || got[0] != want {
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
