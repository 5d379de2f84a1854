"""Command line of the product-matching toolkit: `candidates` then `train-ranker` train on a
labelled catalog (work dir), `submit` matches a new one, `label` asks a person (or an oracle)
about candidate pairs for `train-ranker --labels`, `evaluate`, `ablate`, `report`, `browse`,
`train-embedder` and `demo` do the rest. It parses, calls the library (``pipeline``,
``report``), prints a one-line summary, and exits with status 2 and one clear line on bad input.
"""
from __future__ import annotations

import argparse
import inspect
import json
import select
import signal
import sys
from pathlib import Path

from common.console import show_logs, stderr, summary
from common.errors import InputError
from pipeline import DEFAULT_EMBEDDERS, DEFAULT_POSTPROCESS, Matcher, ParameterError
from pipeline.bundle import TOOLKIT_VERSION
from pipeline.distributed import open_client
from pipeline.settings import ALLOCATIONS, BACKENDS, BRIDGE_MODES, SEARCH_METHODS, SYMMETRISATIONS
from pipeline.transfer import ADAPT_MODES

# The toolkit's packages, whose log records the command line shows.
PACKAGES = ("common", "datasets", "embedders", "candidates", "features", "ranker",
            "postprocess", "pipeline", "report")


def _options_for(function, args, **extra) -> dict:
    """The options whose names are ``function``'s parameters (dataclass fields included)."""
    names = inspect.signature(function).parameters
    return {**{name: value for name, value in vars(args).items() if name in names}, **extra}


def _matcher(args, **params) -> Matcher:
    """A Matcher from the options a command has (the others keep their defaults)."""
    matcher = Matcher(**_options_for(Matcher, args, **params))
    matcher.validate_params()  # out-of-range options are refused before any work
    return matcher


def run_candidates(args) -> dict:
    report = _matcher(args, cache_dir=args.work).find_candidates(args.postings, args.images).report
    recall = f", recall {report['recall']:.3f}" if "recall" in report else ""
    summary(f"candidates: {report['pairs']:,} pairs ({report['pairs_per_posting']:.1f} per "
            f"posting){recall}, {report['seconds']['total']:.1f} s → "
            f"{Path(args.work) / 'candidates.parquet'}")
    return report


def run_train_ranker(args) -> dict:
    from pipeline import train_work_dir

    matcher = _matcher(args, cache_dir=args.work, filter_max_pairs=args.filter_max_pairs or None)
    metrics = train_work_dir(matcher, args.work, labels=args.labels)
    if args.labels:
        figures, answered = metrics["oof_pairwise"], metrics["labelled_pairs"]
        summary(f"train-ranker: {answered['answered']:,} labelled pairs ({answered['matches']:,} "
                f"matches), out-of-fold pairwise F1 {figures['f1']:.4f} (precision "
                f"{figures['precision']:.4f}, recall {figures['recall']:.4f}) over them, "
                f"{metrics['seconds']['total']:.1f} s → {Path(args.work) / 'metrics.json'}")
        return metrics
    threshold_only = metrics["postprocess_steps"][0]["f1"]
    first = f", first stage alone {metrics['first_stage']['f1']:.4f}" if args.stack else ""
    summary(f"train-ranker: out-of-fold F1 {metrics['f1']:.4f} (precision "
            f"{metrics['precision']:.4f}, recall {metrics['recall']:.4f}; threshold only "
            f"{threshold_only:.4f} at {metrics['threshold']:.2f}{first}) on "
            f"{metrics['pairs']:,} pairs, {metrics['seconds']['total']:.1f} s → "
            f"{Path(args.work) / 'metrics.json'}")
    return metrics


def run_train_embedder(args) -> dict:
    from embedders.arcface import TrainingSettings, recipe_settings
    from pipeline import train_embedder

    given = _options_for(TrainingSettings, args, amp=not args.no_amp)
    try:  # a recipe's values, then every option given explicitly on top
        settings = recipe_settings(args.recipe, **{k: v for k, v in given.items()
                                                   if v is not None})
    except ValueError as exc:
        raise InputError(f"train-embedder: {exc}") from None
    report = train_embedder(**_options_for(train_embedder, args, settings=settings))
    summary(f"train-embedder: {args.modality} model, {args.recipe} recipe "
            f"({settings.loss} loss), on {report['postings']:,} postings "
            f"({report['samples_per_second']:.1f} samples/s on {report['device']}, "
            f"amp {report['amp']}), loss {report['final_loss_first']:.3f} → "
            f"{report['final_loss_last']:.3f} → {report['final']}"
            + (f"; out-of-fold vectors in {Path(args.out) / 'oof'}" if args.oof else ""))
    return report


ANSWER_KEYS = {"y": 1, "yes": 1, "n": 0, "no": 0, "u": -1, "unsure": -1}


def run_label(args) -> dict:
    from pipeline.labelling import LabellingSession, oracle_truth, run_oracle

    session = LabellingSession.open(
        args.work, args.labels, groups=args.groups, round_size=args.round_size,
        backend=args.backend, folds=args.folds, seed=args.seed, strategy=args.strategy,
        source="oracle" if args.oracle_labels_from else "user")
    if args.oracle_labels_from:
        truth = oracle_truth(args.oracle_labels_from, session.ids)
        curve = run_oracle(session, truth, args.budget or 300, args.curve)
        last = curve[-1] if curve else session.retrain(truth).as_dict()
        summary(f"label: {last['answered']} oracle answers ({last['matches']} matches), F1 "
                f"{last['f1']:.4f} against the true groups → {args.labels}")
        return {"curve": curve}
    return _ask(session, args.budget, args.labels)


def _ask(session, budget: int | None, labels: str) -> dict:
    """The terminal loop: rounds of questions, every answer saved before the next question,
    the model retrained after each round."""
    history: list[int] = []  # pairs answered in this run, for undo
    estimate = session.retrain() if session.answered else None
    print(f"{session.answered} answers so far in {labels}. Answer y (same product), n (not), "
          f"u (unsure), b (back: undo the last answer), f (finish); Ctrl-C stops too, "
          f"nothing answered is lost.")
    try:
        finished = False
        while not finished and (budget is None or session.answered < budget):
            batch = list(session.next_batch())
            if not batch:
                print("no candidate pair is left to ask about")
                break
            finished = _ask_round(session, batch, history, budget)
            estimate = session.retrain()
            print(f"\nround done: {estimate.answered} answers ({estimate.matches} matches); "
                  f"estimated precision {estimate.precision:.3f}, recall {estimate.recall:.3f} "
                  f"(cross-validated on the answers); the model keeps {estimate.kept_pairs:,} "
                  f"pairs")
    except KeyboardInterrupt:
        stderr.print(f"{session.answered} answers are saved in {labels}; run the same command "
                     f"to go on")
        raise
    summary(f"label: {session.answered} answers in {labels}"
            + (f", estimated precision {estimate.precision:.3f}, recall {estimate.recall:.3f}"
               if estimate else "")
            + "; train with `python cli.py train-ranker --labels`")
    return {"answered": session.answered}


def _read_answer(prompt: str) -> str | None:
    """One typed line, lower-cased (None at the end of input). Waits in short selects, not in
    one blocking read: Ctrl-C's SIGINT may reach one of the numeric libraries' threads, and
    only the main thread turns it into KeyboardInterrupt, between two calls."""
    print(prompt, end="", flush=True)
    if sys.stdin.isatty():
        while not select.select([sys.stdin], [], [], 0.2)[0]:
            pass
    line = sys.stdin.readline()
    return line.strip().lower() if line else None


def _ask_round(session, batch: list[int], history: list[int], budget: int | None) -> bool:
    """Ask about ``batch`` one pair at a time; True when the user finishes."""
    k = 0
    while k < len(batch) and (budget is None or session.answered < budget):
        question = session.question(batch[k])
        chance = "" if question["p"] is None else f"  (model: {question['p']:.2f})"
        print(f"\n[{session.answered + 1}]{chance}\n  a {question['a']}: "
              f"{question['title_a'][:200]}\n  b {question['b']}: {question['title_b'][:200]}")
        reply = _read_answer("same product? [y/n/u/b/f] ")
        if reply is None:  # input closed: as good as finish
            return True
        if reply in ANSWER_KEYS:
            session.answer(batch[k], ANSWER_KEYS[reply])
            history.append(batch[k])
            k += 1
        elif reply in ("b", "back", "undo"):
            if not session.undo():
                print("nothing to undo")
            elif history:
                batch.insert(k, history.pop())  # the undone pair is asked again next
        elif reply in ("f", "finish", "q", "quit"):
            return True
        else:
            print("answer y, n, u, b or f")
    return False


def run_ablate(args) -> dict:
    from pipeline import ablate_work_dir

    groups = _matcher(args).validate_params()["groups"]
    result = ablate_work_dir(args.work, **_options_for(ablate_work_dir, args, groups=groups))
    rows = result["rows"]
    summary(f"ablate: {len(rows)} runs, all-groups F1 {rows[0]['f1']:.4f}, "
            f"{result['seconds']:.1f} s → {Path(args.work) / 'ablation.md'}")
    return result


def run_submit(args):
    matcher = Matcher.load(args.model, args.work).set_params(chunk_size=args.chunk_size or None,
                                                             client=args.client,
                                                             adapt=args.adapt)
    if args.search:  # otherwise the model's
        matcher.set_params(search=args.search)
    result = matcher.submit(args.postings, args.out, args.images)
    sizes = result.submission["matches"].str.count_matches(" ") + 1
    adapted = (f", conservative post-processing (a catalog unlike the training one; "
               f"{result.sole_code_pairs:,} pairs of sole code holders)" if result.adapted else "")
    summary(f"submit: {result.submission.height:,} postings, {result.pairs.height:,} pairs, "
            f"{float(sizes.mean()):.2f} matches per posting{adapted}, "
            f"{result.seconds['total']:.1f} s → {args.out}")
    return result


def run_evaluate(args) -> dict:
    from common.metric import evaluate_submission

    score = evaluate_submission(args.postings, args.submission)
    print(json.dumps(score))
    return score


def run_report(args):
    from report import build_report

    result = build_report(args.work, args.out, args.images, cards=args.cards, seed=args.seed)
    summary(f"report: {result.postings:,} postings, {result.pairs:,} pairs, F1 {result.f1:.4f}, "
            f"{result.cards} gallery cards ({result.thumbnails} thumbnails), "
            f"{result.bytes / 1e6:.1f} MB, {result.seconds['total']:.1f} s → {result.path}")
    return result


def run_browse(args):
    from report import build_browse_page

    result = build_browse_page(args.work, args.out, args.submission, args.sample)
    summary(f"browse: {result.postings:,} postings, {result.pairs:,} predicted pairs, "
            f"{result.bytes / 1e6:.1f} MB, {result.seconds['total']:.1f} s → {result.path}")
    return result


def run_demo(args) -> dict:
    from pipeline.demo import run_demo as demo

    score = demo(args.work, args.products, args.k)
    print(json.dumps(score))
    summary(f"demo: F1 {score['f1']:.4f} on the held-out generated catalog → {args.work}")
    return score


# ----------------------------------------------------------------------------- argument parsing

DEFAULTS = Matcher().get_params()  # one source for the defaults the options share with the API


def _training_options(p: argparse.ArgumentParser, groups: str, stack: str) -> None:
    """The options `train-ranker` and `ablate` share."""
    p.add_argument("--backend", choices=list(BACKENDS), default=DEFAULTS["backend"])
    p.add_argument("--folds", type=int, default=DEFAULTS["folds"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--negative-rate", type=float, default=DEFAULTS["negative_rate"],
                   help="share of non-matching pairs kept for training (weighted back)")
    p.add_argument("--symmetrise", choices=list(SYMMETRISATIONS), default=DEFAULTS["symmetrise"])
    p.add_argument("--groups", help=groups)
    p.add_argument("--stack", action=argparse.BooleanOptionalAction, default=DEFAULTS["stack"],
                   help=stack)


def _scheduler_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="run as Dask tasks on the dask.distributed scheduler at "
                   "this address, or local:N (a LocalCluster of N worker processes)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python cli.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=TOOLKIT_VERSION)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("candidates", help="embed postings and build candidate pairs")
    p.add_argument("--postings", required=True, help="postings CSV or parquet")
    p.add_argument("--images", help="folder holding the files named in the image column")
    p.add_argument("--work", required=True, help="work directory for every artifact")
    p.add_argument("--embedders", default=DEFAULT_EMBEDDERS,
                   help=f"comma-separated embedder names (default {DEFAULT_EMBEDDERS})")
    p.add_argument("--k", type=int, default=DEFAULTS["k"],
                   help="neighbours per posting per embedder (where photo bridges join, each "
                        "list pairs its first BRIDGE_LIST_DEPTH)")
    p.add_argument("--search", choices=list(SEARCH_METHODS), default=DEFAULTS["search"],
                   help="top-K search: exact, ann (approximate: faiss IVF for dense vectors, a "
                        "bounded inverted-index walk for sparse ones) or auto (ann from the "
                        "measured crossover size on; default)")
    p.add_argument("--allocation", choices=list(ALLOCATIONS), default=DEFAULTS["allocation"],
                   help="per_posting (default): each posting's best K; global: each embedder "
                        "keeps the K·n most similar (posting, neighbour) entries of the whole "
                        "catalog, at least 5 per posting, from each posting's best SEARCH_DEPTH")
    p.add_argument("--search-depth", type=int, default=DEFAULTS["search_depth"],
                   help="list depth searched for the global allocation (default 2·K)")
    p.add_argument("--blend-depth", type=int, default=DEFAULTS["blend_depth"], help="blend each "
                   "vector with its DEPTH nearest neighbours' before the search (0: off)")
    p.add_argument("--blend-iterations", type=int, default=DEFAULTS["blend_iterations"],
                   help="repeat the blending on the blended vectors (INB)")
    p.add_argument("--blend-power", type=float, default=DEFAULTS["blend_power"],
                   help="neighbour weight = similarity ** POWER (own vector: 1)")
    p.add_argument("--bridges", choices=list(BRIDGE_MODES), default=DEFAULTS["bridges"],
                   help="photo bridges: on, off, or auto (default: on unless a learned "
                        "embedder such as arcface_text is among the embedders)")
    p.add_argument("--bridge-out", type=int, default=DEFAULTS["bridge_out"],
                   help="photo bridges: pair a posting with the best OUT neighbours of each "
                        "posting whose photo is near-identical to its own (default "
                        f"{DEFAULTS['bridge_out']})")
    p.add_argument("--bridge-in", type=int, default=DEFAULTS["bridge_in"],
                   help="photo bridges: pair a posting with the postings that list its photo "
                        f"twin among their best IN (default {DEFAULTS['bridge_in']})")
    p.add_argument("--bridge-list-depth", type=int, default=DEFAULTS["bridge_list_depth"],
                   help="where a catalog has photo twins, each list pairs only its first DEPTH "
                        f"entries: the bridges take the tail's place (default "
                        f"{DEFAULTS['bridge_list_depth']})")
    _scheduler_option(p)
    p.set_defaults(run=run_candidates)

    p = sub.add_parser("train-ranker", help="build features, cross-validate (P1), train the model")
    p.add_argument("--work", required=True, help="work directory written by `candidates`")
    _training_options(p, groups="comma-separated feature groups (default: the ten default "
                      "groups; with --labels, those and identifiers)",
                      stack="second stage: a ranker that also sees the first stage's scores "
                            "around each pair, by a nested P1 (--no-stack: the first alone)")
    p.add_argument("--filter-threshold", type=float, default=DEFAULTS["filter_threshold"],
                   help="first-pass filter: drop pairs a small model on the similarity and phash "
                        "features scores below this both ways (0: no filter)")
    p.add_argument("--filter-max-pairs", type=int, default=DEFAULTS["filter_max_pairs"],
                   help="the filter keeps a pair only among the best N of both its postings, "
                        "bounding the work per posting on dense catalogs (0: no bound)")
    p.add_argument("--weight-by-group-size", action="store_true",
                   help="weight pairs by 1/|true group| so every posting counts about equally")
    p.add_argument("--view-dropout", type=float, default=DEFAULTS["view_dropout"],
                   help="share of training pairs whose photo features are hidden, so the model "
                        "learns what a missing photo (or a title-only catalog) means (0: off)")
    p.add_argument("--postprocess", default=DEFAULT_POSTPROCESS,
                   help=f"post-processing steps to tune and apply, run in the order "
                        f"{DEFAULT_POSTPROCESS} ('threshold' alone: the plain cut)")
    p.add_argument("--labels", help="train on the pairs of this labels file (posting_id_a, "
                   "posting_id_b, match[, source]) instead of label_group: one stage, no "
                   "filter, the 0.5 cut")
    _scheduler_option(p)
    p.set_defaults(run=run_train_ranker)

    p = sub.add_parser("label", help="label candidate pairs in the terminal (active learning)")
    p.add_argument("--work", required=True, help="work directory written by `candidates`")
    p.add_argument("--labels", required=True, help="labels file: answers are appended, and a "
                   "rerun resumes from them")
    p.add_argument("--round-size", type=int, default=50,
                   help="questions between retrainings")
    p.add_argument("--budget", type=int, help="stop once the file holds this many answers "
                   "(oracle mode: default 300)")
    p.add_argument("--strategy", choices=["active", "random"], default="active",
                   help="active: the pairs the model is least sure of; random: uniformly drawn "
                        "candidate pairs (the baseline)")
    p.add_argument("--oracle-labels-from", metavar="POSTINGS", help="answer from this "
                   "postings file's label_group instead of asking (benchmarks, tests)")
    p.add_argument("--curve", help="oracle mode: write the learning curve (JSON) here")
    p.add_argument("--backend", choices=list(BACKENDS), default=DEFAULTS["backend"])
    p.add_argument("--folds", type=int, default=DEFAULTS["folds"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--groups", help="comma-separated feature groups (default: the default "
                   "groups and identifiers)")
    p.set_defaults(run=run_label)

    p = sub.add_parser("train-embedder",
                       help="train a text or image embedder (ArcFace or another recipe)")
    p.add_argument("--modality", choices=["text", "image"], required=True)
    p.add_argument("--postings", required=True, help="labelled postings CSV or parquet")
    p.add_argument("--images", help="image folder (image modality)")
    p.add_argument("--out", required=True, help="folder for checkpoints and out-of-fold vectors")
    p.add_argument("--oof", action="store_true",
                   help="protocol P2: train per fold, write out-of-fold vectors to OUT/oof")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, help="stop each training after this many steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4, help="encoder learning rate (AdamW)")
    p.add_argument("--head-lr", type=float, default=3e-3)
    p.add_argument("--scale", type=float, default=30.0, help="ArcFace scale s")
    p.add_argument("--margin", type=float, default=0.5, help="ArcFace margin m (radians)")
    p.add_argument("--easy-margin", action="store_true")
    p.add_argument("--sam", action="store_true", default=None,
                   help="sharpness-aware minimisation")
    # names are checked by the training settings, so that parsing needs no torch import
    p.add_argument("--recipe", default="arcface",
                   help="arcface, contrastive-xbm, arcface-sam-ranger, arcface-balanced, "
                        "arcface-focal-ramp, triplet, curricularface, subcenter-arcface or "
                        "multi-similarity: a named combination of the options below (README: "
                        "\"Embedder training recipes\"); options given explicitly override it")
    p.add_argument("--loss", help="arcface (default), subcenter-arcface, curricularface, "
                                  "contrastive, triplet or multi-similarity")
    p.add_argument("--miner", help="pair losses: none, multi-similarity or batch-hard")
    p.add_argument("--xbm", type=int, help="pair losses: cross-batch memory of SIZE embeddings")
    p.add_argument("--xbm-start", type=float, help="fraction of training before the memory is "
                   "filled and used (XBM's warm-up)")
    p.add_argument("--optimizer", help="adamw (default) or ranger (RAdam + LookAhead)")
    p.add_argument("--sampler", help="batches: auto (m-per-class for pair losses, else random), "
                                     "random, class-balanced or m-per-class")
    p.add_argument("--m-per-class", type=int, help="m-per-class sampling: postings per group")
    p.add_argument("--margin-warmup", type=float,
                   help="margin losses: ramp the margin up over this fraction of training")
    p.add_argument("--focal-gamma", type=float,
                   help="margin losses: focal term (1 - p)^gamma on the cross-entropy")
    p.add_argument("--device", default="auto", help="auto (CUDA where present), cpu, cuda")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA too")
    p.add_argument("--amp-dtype", choices=["auto", "float16", "bfloat16"], default="float16",
                   help="mixed precision: float16 is for CUDA (the CPU stays in float32); "
                        "auto also uses bfloat16 on a CPU that has it natively (AVX512-BF16, "
                        "AMX)")
    p.add_argument("--model-path", help="text: sentence-transformers folder (default: MiniLM)")
    p.add_argument("--max-seq-length", type=int, default=32)
    p.add_argument("--freeze-layers", type=int, default=4, help="text: lowest layers kept frozen")
    p.add_argument("--backbone", default="tf_efficientnet_lite0", help="image: timm name")
    p.add_argument("--checkpoint", help="image: starting weights (safetensors or .pth)")
    p.add_argument("--pooling", choices=["avg", "gem"], default="gem")
    p.add_argument("--image-size", type=int, help="image: input size (default: backbone's)")
    p.set_defaults(run=run_train_embedder)

    p = sub.add_parser("ablate", help="P1 F1 without each feature group and with each alone")
    p.add_argument("--work", required=True, help="work directory after `train-ranker`")
    _training_options(p, groups="comma-separated groups to ablate (default: every group)",
                      stack="add the row 'with score_graph': the second-stage ranker on top of "
                            "every group (default; --no-stack: the first-stage rows only)")
    p.set_defaults(run=run_ablate)

    p = sub.add_parser("submit", help="match a new catalog with a trained model")
    p.add_argument("--postings", required=True)
    p.add_argument("--images")
    p.add_argument("--model", required=True, help="model folder (or the work dir holding it)")
    p.add_argument("--out", required=True, help="submission CSV to write")
    p.add_argument("--work", help="cache embeddings here; write submit.json (seconds per stage)")
    p.add_argument("--search", choices=list(SEARCH_METHODS),
                   help="top-K search method (default: the model's; auto decides from this "
                        "catalog's size)")
    p.add_argument("--chunk-size", type=int, default=DEFAULTS["chunk_size"],
                   help="query postings whose pairs are filtered, featurised and scored at a "
                        "time: bounds the memory, not the results (0: all at once; default "
                        "%(default)s)")
    p.add_argument("--adapt", choices=list(ADAPT_MODES), default=DEFAULTS["adapt"],
                   help="where the catalog is unlike the training one (score shift, a view "
                        "missing), match only mutual best pairs the model is sure of and sole "
                        "holders of a model code instead of the saved post-processing: auto "
                        "(where detected; default), always, never")
    _scheduler_option(p)
    p.set_defaults(run=run_submit)

    p = sub.add_parser("evaluate", help="score a submission against labelled postings")
    p.add_argument("--postings", required=True)
    p.add_argument("--submission", required=True)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("report", help="write an HTML run report with plots and match galleries")
    p.add_argument("--work", required=True, help="work directory written by `train-ranker`")
    p.add_argument("--out", help="HTML file to write (default WORK/report.html)")
    p.add_argument("--images", help="images folder for thumbnails (default: `candidates`')")
    p.add_argument("--cards", type=int, default=30, help="postings in the galleries: worst false "
                   "positives, worst false negatives, the rest sampled (a third each)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled gallery postings")
    p.set_defaults(run=run_report)

    p = sub.add_parser("browse", help="write one HTML page to search any posting's matches")
    p.add_argument("--work", required=True, help="work directory written by `train-ranker`")
    p.add_argument("--submission", help="show this submission over WORK's postings instead")
    p.add_argument("--out", help="HTML file to write (default WORK/browse.html)")
    p.add_argument("--sample", type=int, help="only N seeded postings with their groups")
    p.set_defaults(run=run_browse)

    p = sub.add_parser("demo", help="run everything on a generated catalog and print its F1")
    p.add_argument("--work", default="runs/demo")
    p.add_argument("--products", type=int, default=600)
    p.add_argument("--k", type=int, default=50)
    p.set_defaults(run=run_demo)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a `kill` unwinds like Ctrl-C: temporary files are removed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_logs(PACKAGES)  # the library logs through `logging`; the command line shows it
    previous = signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over `ulimit -f`: OSError(EFBIG), exit 2
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        with open_client(getattr(args, "scheduler", None)) as args.client:
            args.run(args)
    except ParameterError as exc:
        stderr.print(f"[red]error:[/red] --{exc.parameter.replace('_', '-')} {exc.requirement}")
        return 2
    except InputError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        stderr.print("interrupted; finished artifacts are kept, partial ones were not written")
        return 130
    except OSError as exc:  # unreadable input or unwritable output (permissions, full disk)
        where = f"{exc.filename}: " if exc.filename else ""
        stderr.print(f"[red]error:[/red] {where}{exc.strerror or exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
