"""`zhitongche nlu …`: train, parse (stdin → JSON lines), eval. Importing this module is cheap."""
from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

import click


@click.group(name="nlu")
def nlu_group() -> None:
    """中文自然语言理解：训练、解析、评测。"""


@nlu_group.command("train")
@click.option("--stations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Station CSV to build the place table from (default config/demo/stations.csv).")
@click.option("--force", is_flag=True, help="Retrain even when the shipped model is current.")
def train_cmd(stations: Path | None, force: bool) -> None:
    """Regenerate the place lookup (nlu/data/places.yml, jieba dictionary) and build the shipped
    embedded model in nlu/model/ (needs the shared real data: ZTC_SHARED_DATA or ../shared/data)."""
    from nlu import data as nd
    from nlu import model_store

    table = nd.build_place_table(stations or nd.STATIONS_CSV)
    nd.write_place_files(table)
    click.echo(f"places: {len(table.canonical)} canonical names, {len(table.synonyms)} synonyms "
               f"→ {nd.PLACES_FILE.relative_to(nd.REPO_ROOT)}", err=True)
    sources = nd.training_sources()
    if not model_store.has_shared_data(sources):
        raise click.ClickException(f"the real letters are not in {nd.shared_data_dir()} (set ZTC_SHARED_DATA): "
                                   "the shipped model is built from them")
    model = model_store.read_model(model_store.MODEL_DIR)
    if force or model is None or model_store.changed_sources(model, sources):
        model = model_store.build(model_store.MODEL_DIR, sources)
    size = sum((model_store.MODEL_DIR / f).stat().st_size for f in (model_store.ARRAYS_FILE, model_store.META_FILE))
    click.echo(f"embedded model {model.version} {model.data_hash}: {model.trained_on}, vocabulary "
               f"{len(model.vocab)}, {size / 1e6:.1f} MB → {model_store.MODEL_DIR.relative_to(nd.REPO_ROOT)}/", err=True)


def _engine(backend: str, rasa_url: str | None):
    from bot.settings import Settings
    from nlu import build_nlu

    settings = Settings()
    overrides = {"nlu_backend": backend}
    if rasa_url:
        overrides["rasa_url"] = rasa_url
    return build_nlu(settings.model_copy(update=overrides))


@nlu_group.command("parse")
@click.option("--backend", type=click.Choice(["embedded", "rasa"]), default=None,
              help="Default: ZTC_NLU_BACKEND.")
@click.option("--rasa-url", default=None)
def parse_cmd(backend: str | None, rasa_url: str | None) -> None:
    """One text per line on stdin → one JSON parse result per line on stdout."""
    from bot.settings import Settings

    backend = backend or Settings().nlu_backend
    if backend == "embedded":
        from nlu.embedded import load_embedded

        engine = load_embedded()
        for line in sys.stdin:
            sys.stdout.write(json.dumps(engine.parse_sync(line.rstrip("\r\n")), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        return

    async def run() -> None:
        engine = _engine(backend, rasa_url)
        try:
            for line in sys.stdin:
                result = await engine.parse(line.rstrip("\r\n"))
                sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
        finally:
            await engine.close()

    asyncio.run(run())


def _evaluate(parse, name: str, limit: int | None):
    """Category test split and short category set, held-out intent set, smp2017 off-topic rate with
    one parse function."""
    from nlu import data as nd
    from nlu.evaluate import percentiles, score, timed

    def categories(test_set: str, rows: list[tuple[str, str]]):
        out, lat = timed(parse, [t for t, _ in rows])
        rep = score(f"{name} · category · {test_set}", [c for _, c in rows],
                    [o.get("category", {}).get("name", "") for o in out])
        rep.latency_ms = percentiles(lat)
        return rep

    reports = []
    tipdm = nd.read_tipdm("test")[:limit]
    if tipdm:
        reports.append(categories("tipdm2020 split=test", tipdm))
    else:
        click.echo(f"(no {nd.tipdm_csv()}: category evaluation skipped)", err=True)
    short = nd.load_rasa_examples(nd.TEST_CATEGORIES_FILE)[:limit]
    reports.append(categories("nlu/test_categories.yml (short chat reports)", [(e.text, e.label) for e in short]))
    ex = nd.load_rasa_examples(nd.TEST_INTENTS_FILE)[:limit]
    out, lat = timed(parse, [e.text for e in ex])
    rep = score(f"{name} · intent · nlu/test_intents.yml", [e.label for e in ex], [o["intent"]["name"] for o in out])
    rep.latency_ms = percentiles(lat)
    report_recall = rep.per_label.get("report_issue", {}).get("recall", 0.0)
    rep.extra["report_issue recall"] = round(report_recall, 4)
    rep.extra["misses"] = [f"{e.label}→{o['intent']['name']}: {e.text}" for e, o in zip(ex, out)
                           if o["intent"]["name"] != e.label]
    reports.append(rep)
    smp = nd.read_smp2017()[:limit]
    if smp:
        out, lat = timed(parse, [t for t, _ in smp])
        counts = Counter(o["intent"]["name"] for o in out)
        rep.extra["smp2017 → report_issue"] = f"{counts['report_issue'] / len(smp):.2%} of {len(smp)}"
        rep.extra["smp2017 intents"] = dict(counts.most_common(6))
        rep.extra["smp2017 latency ms"] = {k: round(v, 3) for k, v in percentiles(lat).items()}
    return reports


@nlu_group.command("eval")
@click.option("--backend", type=click.Choice(["embedded", "rasa"]), default="embedded",
              help="rasa: the Rasa server, printed beside the embedded engine on the same data.")
@click.option("--rasa-url", default=None, help="Default: ZTC_RASA_URL.")
@click.option("--rasa-category-url", default=None,
              help="A second Rasa server trained on nlu/categories (its intents are categories).")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N of each set.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
def eval_cmd(backend: str, rasa_url: str | None, rasa_category_url: str | None, limit: int | None,
             as_json: bool) -> None:
    """Per-label P/R/F1, macro-F1, confusion matrix and latency percentiles."""
    from nlu.embedded import load_embedded
    from nlu.evaluate import format_report

    engine = load_embedded()
    reports = _evaluate(engine.parse_sync, "embedded", limit)
    if backend == "rasa":
        reports += _rasa_reports(rasa_url, rasa_category_url, limit)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=1))
    else:
        for r in reports:
            click.echo(format_report(r) + "\n")


def _rasa_reports(rasa_url: str | None, category_url: str | None, limit: int | None):
    """Rasa answers are fetched one at a time over HTTP (latency includes the loopback round trip)."""
    from bot.settings import Settings
    from nlu.embedded import load_embedded
    from nlu.rasa_backend import RasaNLU, RasaUnavailable

    settings = Settings()
    url = rasa_url or settings.rasa_url
    loop = asyncio.new_event_loop()
    clients = []

    def parser(u: str, as_category: bool):
        client = RasaNLU(u, max(settings.rasa_timeout, 30.0), fallback=load_embedded())
        clients.append(client)

        def parse(text: str) -> dict:
            try:
                r = loop.run_until_complete(client.parse_rasa(text))
            except RasaUnavailable as exc:
                raise click.ClickException(f"Rasa server at {u} unavailable: {exc}") from exc
            if as_category:
                r["category"] = {"name": r["intent"]["name"], "confidence": r["intent"]["confidence"]}
            return r

        return parse

    try:
        reports = _evaluate(parser(url, False), f"rasa {url}", limit)
        if category_url:
            cat = _evaluate(parser(category_url, True), f"rasa-categories {category_url}", limit)
            reports = [r for r in reports if "category" not in r.name] + [r for r in cat if "category" in r.name]
        else:
            reports = [r for r in reports if "category" not in r.name]
            click.echo("(no --rasa-category-url: the intent server has no categories; "
                       "the Rasa backend takes them from the embedded engine)", err=True)
        return reports
    finally:
        for c in clients:
            loop.run_until_complete(c.close())
        loop.close()
