package process

import (
	"reflect"
	"testing"
)

func TestCapSet(t *testing.T) {
	set := CapSet(1<<0 | 1<<13 | 1<<21 | 1<<40)
	want := []string{"CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"}
	if got := set.Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if set.String() != "CAP_CHOWN,CAP_NET_RAW,CAP_SYS_ADMIN,CAP_CHECKPOINT_RESTORE" || CapSet(0).String() != "" {
		t.Errorf("String = %q", set.String())
	}
	if !set.Has(21) || set.Has(12) || set.Has(-1) || set.Has(64) {
		t.Error("Has")
	}
	if CapSet(1 << 45).Names()[0] != "CAP_45" {
		t.Errorf("unknown capability named %v", CapSet(1<<45).Names())
	}
	for i := 0; i <= CapLast; i++ {
		for _, name := range []string{CapName(i), CapName(i)[4:], "cap_" + CapName(i)[4:]} {
			if n, ok := CapByName(name); !ok || n != i {
				t.Errorf("CapByName(%q) = %d, %v; want %d", name, n, ok, i)
			}
		}
	}
	if _, ok := CapByName("CAP_NOPE"); ok {
		t.Error("CapByName accepted an unknown name")
	}
	if set.Hex() != "0000010000202001" {
		t.Errorf("Hex = %s", set.Hex())
	}
}
