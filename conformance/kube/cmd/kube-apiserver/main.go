// kube-apiserver as released in k8s.io/kubernetes: the upstream command, unchanged.
package main

import (
	"os"
	_ "time/tzdata" // time zones for CronJob, as upstream's main imports

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
