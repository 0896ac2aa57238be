// A single-member etcd for the conformance API server, through etcd's embed
// package. It listens on 127.0.0.1 only (plain HTTP on loopback; the API server is
// its only client) and runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "etcd data directory (required)")
	clientPort := flag.String("client-port", "2379", "client port on 127.0.0.1")
	peerPort := flag.String("peer-port", "2380", "peer port on 127.0.0.1")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("--data-dir is required")
	}

	cfg := embed.NewConfig()
	cfg.Name = "k8sgen-conformance"
	cfg.Dir = *dataDir
	cfg.LogLevel = "warn"
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + *clientPort}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + *peerPort}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("starting etcd: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		log.Printf("etcd ready on %s", client.String())
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		log.Fatal("etcd did not become ready within 60s")
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-e.Err():
		log.Fatalf("etcd: %v", err)
	case <-stop:
	}
}
