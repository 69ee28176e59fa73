"""Entry point: ``python -m bench <benchmark> [options]``."""

import sys

BENCHMARKS = {"finetune": "bench.finetune", "detectors": "bench.detectors", "group-scenes": "bench.group_scenes", "verify-rules": "bench.verify_rules", "head-roll": "bench.head_roll", "reproduce": "bench.reproduce", "inference": "bench.inference",
              "peer-fer": "bench.peer_fer",
              "live": "bench.live", "live-runtime": "bench.live_runtime",
              "train-throughput": "bench.train_throughput", "tf-step": "bench.tf_step", "pooling-cache": "bench.pooling_cache",
              "web-load": "bench.web_load", "web-ondevice": "bench.web_ondevice", "web-runtimes": "bench.web_runtimes",
              "zoo": "bench.zoo", "zoo-views": "bench.zoo_views", "zoo-rebuild": "bench.zoo_rebuild", "ray": "bench.ray_study"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        sys.exit(2)
    import importlib

    importlib.import_module(BENCHMARKS[sys.argv[1]]).main(sys.argv[2:])


if __name__ == "__main__":
    main()
