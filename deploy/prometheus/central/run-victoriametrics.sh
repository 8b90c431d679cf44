#!/bin/sh
# VictoriaMetrics single-node and vmalert with redline's rules, on this machine (Debian's
# victoria-metrics package has both): the central store that every cluster's Prometheus
# remote-writes to (prometheus.yml here) and the one ruler over all clusters.
#
#   deploy/prometheus/central/run-victoriametrics.sh          # Ctrl-C stops both
#   redline stat --prometheus http://127.0.0.1:8428 --cluster eu1
#
# Grafana: a Prometheus datasource at http://127.0.0.1:8428 and redline's dashboards
# (`redline dashboards`), whose cluster variable lists every cluster.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rules=${RULES:-$here/..}                          # redline-*.rules.yaml (`redline alerts --out`)
data=${DATA:-./victoria-metrics-data}
vm_listen=${VM_LISTEN:-127.0.0.1:8428}
vmalert_listen=${VMALERT_LISTEN:-127.0.0.1:8880}
alertmanager=${ALERTMANAGER:-http://127.0.0.1:9093}
interval=${INTERVAL:-30s}                         # as every cluster's evaluation_interval

# -dedup.minScrapeInterval: one sample per interval per series, so that a pair of Prometheus
# servers per cluster (external_labels differing only in a replica label, dropped by
# relabel.yml) count once.
victoria-metrics -httpListenAddr="$vm_listen" -storageDataPath="$data" \
  -retentionPeriod=${RETENTION:-90d} -dedup.minScrapeInterval="$interval" \
  -relabelConfig="$here/relabel.yml" &
vm=$!
# Recording rules are written back to VictoriaMetrics (-remoteWrite.url) and alert state is
# restored from it after a restart (-remoteRead.url); alerts go to Alertmanager.
vmalert -httpListenAddr="$vmalert_listen" -evaluationInterval="$interval" \
  -datasource.url="http://$vm_listen" -remoteWrite.url="http://$vm_listen" \
  -remoteRead.url="http://$vm_listen" -notifier.url="$alertmanager" \
  -rule="$rules/redline-*.rules.yaml" &
vmalert=$!
trap 'kill $vmalert $vm 2>/dev/null; wait' INT TERM EXIT
wait
