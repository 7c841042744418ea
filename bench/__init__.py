"""The benchmark harness: `python -m bench [--quick|--smoke|--soak] [--out bench/results]`.

One module per measurement (`bridge_throughput`, `end_to_end`, `latency`, `scale_out`,
`memory`, `scheduler_rate`), each held against a raw baseline run back to back with it
(`minimal_pipeline`: the Kafka-to-Celery one latency is held against);
`stack` starts what they stand on, `results` holds the figures and targets, `chart` draws them.
"""
