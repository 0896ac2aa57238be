// A single-member etcd for the conformance API server, through etcd's embed
// package. It takes the flags of the etcd release binary that scripts/kube-up.sh
// uses (so the script runs nixpkgs' etcd as well), listens where they say (the
// script: 127.0.0.1 only, plain HTTP on loopback; the API server is its only
// client) and runs until SIGINT or SIGTERM.
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

func urls(flagName, value string) []url.URL {
	u, err := url.Parse(value)
	if err != nil || u.Host == "" {
		log.Fatalf("--%s: not a URL: %q", flagName, value)
	}
	return []url.URL{*u}
}

func main() {
	cfg := embed.NewConfig()
	flag.StringVar(&cfg.Name, "name", "default", "member name")
	flag.StringVar(&cfg.Dir, "data-dir", "", "data directory (required)")
	flag.StringVar(&cfg.LogLevel, "log-level", "warn", "log level")
	listenClient := flag.String("listen-client-urls", "", "client URL to listen on (required)")
	advertiseClient := flag.String("advertise-client-urls", "", "client URL to advertise (required)")
	listenPeer := flag.String("listen-peer-urls", "", "peer URL to listen on (required)")
	advertisePeer := flag.String("initial-advertise-peer-urls", "", "peer URL to advertise (required)")
	flag.StringVar(&cfg.InitialCluster, "initial-cluster", "", "name=peer-URL of the one member (required)")
	flag.Parse()
	if cfg.Dir == "" || cfg.InitialCluster == "" {
		log.Fatal("--data-dir and --initial-cluster are required")
	}
	cfg.ListenClientUrls = urls("listen-client-urls", *listenClient)
	cfg.AdvertiseClientUrls = urls("advertise-client-urls", *advertiseClient)
	cfg.ListenPeerUrls = urls("listen-peer-urls", *listenPeer)
	cfg.AdvertisePeerUrls = urls("initial-advertise-peer-urls", *advertisePeer)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("starting etcd: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		log.Printf("etcd ready on %s", cfg.ListenClientUrls[0].String())
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
