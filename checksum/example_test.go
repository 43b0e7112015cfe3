package checksum_test

import (
	"context"
	"fmt"
	"os"

	"github.com/proctrack/proctrack/checksum"
)

func ExampleHasher_Sum() {
	h := checksum.New(checksum.Config{})
	res, err := h.Sum(context.Background(), checksum.Target{PID: os.Getpid()}, checksum.HashSHA256)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Source == fmt.Sprintf("/proc/%d/exe", os.Getpid()), len(res.Digests[checksum.HashSHA256]))
	// Output: true 64
}

func ExampleHasher_SumFile() {
	f, err := os.CreateTemp("", "checksum-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(f.Name())
	f.WriteString("hello\n")
	f.Close()

	h := checksum.New(checksum.Config{})
	res, err := h.SumFile(context.Background(), f.Name(), checksum.HashMD5, checksum.HashSHA256)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Digests[checksum.HashMD5])
	fmt.Println(res.Digests[checksum.HashSHA256])
	// Output:
	// b1946ac92492d2347c6235b4d2611184
	// 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03
}
