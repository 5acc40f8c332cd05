"""Where training runs: the CPU, one or several GPUs, or several machines (TF_CONFIG)."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from edge.errors import UsageError


def training_device() -> tuple[tf.distribute.Strategy, str]:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several workers; else MirroredStrategy over
    several GPUs, the one GPU, or the CPU. The description names the device(s) for the reports."""
    gpus = tf.config.list_physical_devices("GPU")
    local = f"{len(gpus)} x {gpu_name(gpus[0])}" if gpus else "CPU"
    workers = len(cluster_config().get("cluster", {}).get("worker", []))
    if workers > 1:
        return tf.distribute.MultiWorkerMirroredStrategy(), f"{workers} workers (MultiWorkerMirroredStrategy), each {local}"
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"{local} (MirroredStrategy)"
    return tf.distribute.get_strategy(), local


def cluster_config() -> dict:
    """TF_CONFIG, the cluster and this process's task in it (docs/gpu.md "Training on several machines");
    {} when it is unset or empty."""
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as error:
        raise UsageError(f"TF_CONFIG is not JSON ({error})") from None


def is_chief() -> bool:
    """The process that writes the run: TF_CONFIG's chief, or worker 0 when the cluster has no chief
    (TensorFlow's own rule); a process without TF_CONFIG is its own chief."""
    config = cluster_config()
    task = config.get("task", {})
    if not task:
        return True
    return task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index", 0) == 0
                                           and "chief" not in config.get("cluster", {}))


def gpu_name(gpu) -> str:
    return tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
