"""The whole workflow on a generated catalog (``python cli.py demo``): train with the defaults,
match a held-out generated catalog, score it. Generated, not real data: labels are known."""
from __future__ import annotations

import logging
from pathlib import Path

from common.metric import evaluate_submission
from common.workdir import WorkDir
from datasets import generate_catalog

from .matcher import Matcher
from .settings import ParameterError

log = logging.getLogger(__name__)


def run_demo(root: str | Path, products: int = 600, k: int = 50) -> dict:
    """Write ``demo_train.csv`` and ``demo_test.csv`` into ``root``, train in ``root/work``
    (model in ``root/work/model``), write ``root/submission.csv``; returns its F1, precision and
    recall on the held-out catalog."""
    if products < 20:
        raise ParameterError("products", "must be at least 20")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    train, test = root / "demo_train.csv", root / "demo_test.csv"
    generate_catalog(n_products=products, seed=0).write_csv(train)
    generate_catalog(n_products=max(products // 3, 20), seed=1, id_prefix="test").write_csv(test)
    log.info(f"generated catalogs (not real data): {train}, {test}")
    with WorkDir(root / "work").lock():
        matcher = Matcher(k=k, cache_dir=root / "work").fit(train)
        matcher.save(root / "work" / "model")
        log.info(f"out-of-fold F1 on the generated training catalog: "
                 f"{matcher.cv_report_['f1']:.4f}")
        matcher.submit(test, root / "submission.csv")
    return evaluate_submission(str(test), str(root / "submission.csv"))
