package install

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// serviceProxy plays kube-proxy's part for one Service port: it listens on
// a loopback address and forwards each connection to the next live replica
// at the port the Service's targetPort resolves to there. Without it the
// rehearsal would have to point the API server and the clients at one
// replica, and a Service's selector, targetPort and port names would go
// untested.
type serviceProxy struct {
	listener net.Listener
	// backends returns the live replicas' addresses for this port.
	backends func() []string
	next     atomic.Uint64
	wg       sync.WaitGroup
}

func newServiceProxy(listener net.Listener, backends func() []string) *serviceProxy {
	p := &serviceProxy{listener: listener, backends: backends}
	p.wg.Add(1)
	go p.serve()
	return p
}

// Addr is the stand-in for the Service's cluster IP and port.
func (p *serviceProxy) Addr() string { return p.listener.Addr().String() }

func (p *serviceProxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return
		}
		go p.forward(conn)
	}
}

// forward connects conn to a backend, trying each once from the next in
// turn, as kube-proxy spreads connections over a Service's endpoints.
func (p *serviceProxy) forward(conn net.Conn) {
	defer func() { _ = conn.Close() }()
	backends := p.backends()
	if len(backends) == 0 {
		return
	}
	start := p.next.Add(1)
	var upstream net.Conn
	for i := range backends {
		c, err := net.Dial("tcp", backends[(int(start)+i)%len(backends)])
		if err == nil {
			upstream = c
			break
		}
	}
	if upstream == nil {
		return
	}
	defer func() { _ = upstream.Close() }()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, conn)
	go pipe(conn, upstream)
	<-done
	<-done
}

// Close stops listening. Connections in flight end with the replicas or
// the clients; the API server keeps its own open for as long as it lives.
func (p *serviceProxy) Close() error {
	err := p.listener.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	p.wg.Wait()
	return err
}
