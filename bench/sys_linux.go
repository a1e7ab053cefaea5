package main

import (
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// cpuMask is a sched_setaffinity mask for up to 1024 CPUs.
type cpuMask [16]uint64

// setThreadAffinity pins the calling thread to cpu.
func setThreadAffinity(cpu int) error {
	var m cpuMask
	m[cpu/64] |= 1 << (cpu % 64)
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return errno
	}
	return nil
}

// startPinned starts cmd on cpu: a child process inherits the CPU affinity
// of the thread that forks it, so the fork happens on a thread pinned to
// cpu, and the child's runtime sees one CPU from its first instruction
// (GOMAXPROCS=1, every thread on that CPU). The pinned thread is not handed
// back to the scheduler: it exits with its goroutine. cpu < 0 starts cmd
// unpinned.
func startPinned(cmd *exec.Cmd, cpu int) error {
	if cpu < 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := setThreadAffinity(cpu); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs() []int {
	var m cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return nil
	}
	var cpus []int
	for cpu := 0; cpu < len(m)*64; cpu++ {
		if m[cpu/64]&(1<<(cpu%64)) != 0 {
			cpus = append(cpus, cpu)
		}
	}
	return cpus
}

// affinity is the list of CPUs this process may run on ("0", "0-1").
func affinity() string {
	var m cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return ""
	}
	var cpus []string
	for cpu := 0; cpu < len(m)*64; cpu++ {
		if m[cpu/64]&(1<<(cpu%64)) == 0 {
			continue
		}
		start := cpu
		for cpu+1 < len(m)*64 && m[(cpu+1)/64]&(1<<((cpu+1)%64)) != 0 {
			cpu++
		}
		if cpu == start {
			cpus = append(cpus, strconv.Itoa(start))
		} else {
			cpus = append(cpus, strconv.Itoa(start)+"-"+strconv.Itoa(cpu))
		}
	}
	return strings.Join(cpus, ",")
}

// pinCPUs returns the CPUs for the client and the fixture server: the
// first two this process may run on; ok is false with fewer than two.
func pinCPUs() (client, server int, ok bool) {
	cpus := allowedCPUs()
	if len(cpus) < 2 {
		return -1, -1, false
	}
	return cpus[0], cpus[1], true
}
