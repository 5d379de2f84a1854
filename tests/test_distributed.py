"""Matching and training on a Dask LocalCluster of two worker processes: the same pairs, scores
and submission as one process, an out-of-fold F1 close to its, and a submission that survives
the loss of a worker in the middle of the run."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import polars as pl
import pytest

from datasets import generate_catalog
from pipeline import Matcher
from pipeline.distributed import local_cluster
from tests.conftest import run_cli

distributed = pytest.importorskip("distributed")
key_split = pytest.importorskip("dask.utils").key_split


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2, threads_per_worker=1) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


@pytest.fixture(scope="module")
def catalogs():
    return (generate_catalog(n_products=60, seed=3),
            generate_catalog(n_products=30, seed=4, id_prefix="t"))


@pytest.fixture(scope="module")
def single(catalogs):
    """The single-process fit the cluster's runs are compared with."""
    return Matcher(k=15, folds=3).fit(catalogs[0])


def test_fit_and_match_on_a_cluster_equal_one_process(single, catalogs, cluster, tmp_path):
    _, client = cluster
    train, test = catalogs
    matcher = Matcher(k=15, folds=3, client=client).fit(train)
    assert matcher.candidates_report_["candidates_fingerprint"] \
        == single.candidates_report_["candidates_fingerprint"]
    # Each worker bins its range of features from its own few hundred pairs, which moves the
    # trees of so small a catalog (README, "Running on a Dask cluster": Shopee train's move).
    assert abs(matcher.cv_report_["f1"] - single.cv_report_["f1"]) < 0.03
    assert "client" not in matcher.bundle_.params  # not part of the model
    # The model trained on the cluster is an ordinary one: saved, loaded and used in-process.
    matcher.save(tmp_path / "model")
    assert Matcher.load(tmp_path / "model").predict(test).equals(matcher.predict(test))

    alone = single.set_params(client=None).match(test)
    together = single.set_params(client=client, chunk_size=7).match(test)
    single.set_params(client=None, chunk_size=100_000)
    assert together.pairs.equals(alone.pairs)  # same pairs, same p to the last bit
    assert together.submission.equals(alone.submission)


def test_one_worker_trains_the_single_process_model(single, catalogs, tmp_path):
    """With one worker there is nothing to bin apart: lightgbm.dask, the early stopping on the
    whole validation set and the distributed features give the same model files."""
    with local_cluster(1, threads_per_worker=1) as cluster, distributed.Client(cluster) as client:
        matcher = Matcher(k=15, folds=3, client=client).fit(catalogs[0])
    assert matcher.oof_scores_.equals(single.oof_scores_)
    matcher.save(tmp_path / "cluster")
    single.save(tmp_path / "alone")
    assert _model_files(tmp_path / "cluster") == _model_files(tmp_path / "alone")


def _model_files(folder: Path) -> dict[str, bytes]:
    """A model folder's files; of a LightGBM text, its trees (its parameters section lists how
    it was trained: tree learner, machines, threads)."""
    return {str(p.relative_to(folder)): p.read_bytes().split(b"\nparameters:\n")[0]
            for p in sorted(folder.rglob("*")) if p.is_file()}


class KillAfterFirstBlock(distributed.SchedulerPlugin):
    """Kills (SIGKILL) the worker that has just computed the first first-stage feature block:
    its results and running tasks are lost, and its nanny starts a fresh worker."""

    def __init__(self, pids: dict[str, int]):
        self.pids, self.killed = pids, None

    def transition(self, key, start, finish, *args, **kwargs):
        worker = kwargs.get("worker")
        if self.killed is None and finish == "memory" and worker in self.pids \
                and key_split(key) == "first_stage_block":
            self.killed = worker
            os.kill(self.pids[worker], signal.SIGKILL)


def test_a_worker_killed_in_the_middle_of_submit_changes_nothing(single, catalogs, cluster,
                                                                    tmp_path):
    cluster, client = cluster
    test = catalogs[1]
    single.set_params(client=client, chunk_size=5)
    single.submit(test, tmp_path / "undisturbed.csv")
    plugin = KillAfterFirstBlock(client.run(os.getpid))
    cluster.scheduler.add_plugin(plugin, name="kill")
    try:
        single.submit(test, tmp_path / "disturbed.csv")
    finally:
        cluster.scheduler.remove_plugin("kill")
        single.set_params(client=None, chunk_size=100_000)
    assert plugin.killed is not None
    client.wait_for_workers(2)  # the nanny restarted it
    assert plugin.killed not in client.scheduler_info()["workers"]
    assert (tmp_path / "disturbed.csv").read_bytes() \
        == (tmp_path / "undisturbed.csv").read_bytes()
    single.submit(test, tmp_path / "alone.csv")
    assert (tmp_path / "alone.csv").read_bytes() == (tmp_path / "undisturbed.csv").read_bytes()


def test_a_local_cluster_leaves_the_environment_as_it_was():
    """Workers starting set OMP_NUM_THREADS=1 and others in the parent's environment; a command
    started from it afterwards would train on one thread (other trees)."""
    before = dict(os.environ)
    with local_cluster(1, threads_per_worker=1) as cluster, distributed.Client(cluster):
        pass
    assert dict(os.environ) == before


def test_the_commands_on_a_local_cluster(single, catalogs, tmp_path):
    train, test = catalogs
    train.write_csv(tmp_path / "train.csv")
    test.write_csv(tmp_path / "test.csv")
    single.save(tmp_path / "model")
    work = tmp_path / "w"
    for argv in (["candidates", "--postings", str(tmp_path / "train.csv"), "--work", str(work),
                  "--k", "15"],
                 ["train-ranker", "--work", str(work), "--folds", "3", "--no-stack"],
                 ["submit", "--postings", str(tmp_path / "test.csv"), "--model",
                  str(tmp_path / "model"), "--out", str(tmp_path / "cluster.csv")]):
        done = run_cli(*argv, "--scheduler", "local:2")
        assert done.returncode == 0, done.stderr
    assert pl.read_csv(tmp_path / "cluster.csv").equals(single.predict(test))
    assert (work / "model" / "ranker.lgb.txt").is_file()
    done = run_cli("submit", "--postings", str(tmp_path / "test.csv"), "--model",
                   str(tmp_path / "model"), "--out", str(tmp_path / "x.csv"),
                   "--scheduler", "local:x")
    assert done.returncode == 2 and "--scheduler must be" in done.stderr
