package controlplane

import "net"

// FreePorts asks the kernel for n distinct free loopback ports, for the
// processes started beside the control plane (the operator's servers). The
// listeners are held until all n are found, so no port is handed out twice,
// then closed for the process that will bind them.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
