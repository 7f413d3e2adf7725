package suite

// PublishedPeers are other systems' write figures quoted in issue #3 for
// scale. They were not measured on this machine or in this run: the
// report marks them as published and names their hardware. Both are
// 3-member Raft clusters acknowledging a write once a quorum fsynced it,
// like provbench's cluster scenario.
func PublishedPeers() []Peer {
	return []Peer{
		{
			System: "Consul", What: "KV writes/s, 3-server cluster (p99 49 ms)",
			Value: 3780, Unit: "writes/s", Published: true,
			Hardware: "three 8-core servers",
			Source:   "HashiCorp's published Consul benchmark, as quoted in issue #3",
		},
		{
			System: "etcd v2.2.0", What: "writes/s, 3-member cluster",
			Value: 4581, Unit: "writes/s", Published: true,
			Hardware: "three GCE n1-highcpu-2 members (2 vCPUs, 1.8 GB, local SSD), load from a fourth machine",
			Source:   "etcd.io benchmarks: etcd v2.2.0, as quoted in issue #3",
		},
	}
}
