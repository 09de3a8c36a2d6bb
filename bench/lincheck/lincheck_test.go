package lincheck

import (
	"testing"
	"time"
)

func TestCheckTellsLinearizableFromNot(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	good := []Op{
		{Client: 0, Write: true, Value: "a", Call: at(0), Return: at(10)},
		{Client: 1, Value: "a", Call: at(11), Return: at(12)},
		{Client: 0, Write: true, Value: "b", Call: at(13), Unknown: true},
		{Client: 1, Value: "b", Call: at(20), Return: at(21)},
	}
	if r := Check(good, "init", 10*time.Second); !r.OK() || r.Reads != 2 || r.Writes != 2 {
		t.Fatalf("linearizable history: %+v", r)
	}
	// A read after an acknowledged write returns the older value: stale.
	stale := []Op{
		{Client: 0, Write: true, Value: "a", Call: at(0), Return: at(10)},
		{Client: 1, Value: "init", Call: at(11), Return: at(12)},
	}
	if r := Check(stale, "init", 10*time.Second); r.OK() {
		t.Fatalf("a stale read passed: %+v", r)
	}
}
