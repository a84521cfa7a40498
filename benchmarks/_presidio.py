"""The PII benchmark's anchor: Microsoft Presidio (``presidio-analyzer``) in its own venv
(``benchmarks/.venvs/presidio``), run side by side with Stackyard on the same sentences.

No spaCy pipeline with an NER model is published on PyPI (spaCy's own are GitHub release
assets, which this machine cannot reach), so Presidio runs twice:

- **recognisers only**: a blank English spaCy pipeline, so Presidio's pattern recognisers
  (emails, phones, cards, IBANs, SSNs, IPs, URLs, dates, driver's licences...) and no NER;
- **with an NER model trained here**: spaCy's own NER trained on the same training templates
  and the same ordinary sentences as Stackyard's tagger, its labels mapped to Presidio's
  entities (PERSON, LOCATION, ORGANIZATION, DATE_TIME, NRP): Presidio as a team would tune it
  for this data.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._procs import anchor_venv

VERSION = "2.2.366"

SCRIPT = r"""
import json, random, sys, time
import spacy
from spacy.training import Example
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

job = json.load(open(sys.argv[1]))
work = sys.argv[2]
LABELS = {"PERSON": "PERSON", "STREET_ADDRESS": "LOC", "ZIP_CODE": "LOC", "GPE": "GPE",
          "ORGANIZATION": "ORG", "DATE_TIME": "DATE", "NRP": "NORP"}


def train():
    random.seed(0)
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in set(LABELS.values()):
        ner.add_label(label)
    examples = []
    for record in job["train"]:
        doc = nlp.make_doc(record["full_text"])
        spans = []
        for s in record["spans"]:
            if s["entity_type"] not in LABELS:
                continue
            span = doc.char_span(s["start_position"], s["end_position"],
                                 label=LABELS[s["entity_type"]], alignment_mode="expand")
            if span is not None:
                spans.append(span)
        ents = [(e.start_char, e.end_char, e.label_) for e in spacy.util.filter_spans(spans)]
        examples.append(Example.from_dict(doc, {"entities": ents}))
    for text in job["ordinary"]:
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": []}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(job["epochs"]):
        random.shuffle(examples)
        for batch in spacy.util.minibatch(examples, size=16):
            nlp.update(batch, sgd=optimizer, drop=0.2)
    return nlp


def analyzer(nlp):
    mapping = {"PERSON": "PERSON", "LOC": "LOCATION", "GPE": "LOCATION", "ORG": "ORGANIZATION",
               "DATE": "DATE_TIME", "NORP": "NRP"}
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": "blank"}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping=mapping, labels_to_ignore=[]
        ),
    )
    engine.nlp = {"en": nlp}
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def run(engine):
    found = []
    for text in job["test"]:
        found.append([[r.start, r.end, r.entity_type]
                      for r in engine.analyze(text=text, language="en")])
    ordinary = [bool(engine.analyze(text=t, language="en")) for t in job["plain"]]
    timings = []
    for text in job["latency"]:
        started = time.perf_counter()
        engine.analyze(text=text, language="en")
        timings.append((time.perf_counter() - started) * 1000)
    return {"found": found, "plain": ordinary, "ms": timings}


started = time.perf_counter()
trained = train()
train_s = time.perf_counter() - started
out = {"version": __import__("importlib.metadata").metadata.version("presidio-analyzer"),
       "spacy": spacy.__version__, "train_s": train_s,
       "recognisers only": run(analyzer(spacy.blank("en"))),
       "with NER trained here": run(analyzer(trained))}
json.dump(out, open(work + "/out.json", "w"))
"""


def presidio(
    train: list[dict[str, Any]],
    ordinary: list[str],
    test: list[str],
    plain: list[str],
    latency: list[str],
    epochs: int = 20,
) -> dict[str, Any]:
    """Presidio's finds on ``test`` ((start, end, entity) per text), whether it finds anything
    in each of ``plain``, and its milliseconds on each of ``latency``: recognisers only, and
    with spaCy's NER trained on ``train`` and ``ordinary``."""
    python, _ = anchor_venv("presidio", "presidio-analyzer", VERSION)
    with tempfile.TemporaryDirectory() as work:
        job = Path(work) / "job.json"
        job.write_text(
            json.dumps(
                {
                    "train": train,
                    "ordinary": ordinary,
                    "test": test,
                    "plain": plain,
                    "latency": latency,
                    "epochs": epochs,
                }
            )
        )
        subprocess.run([str(python), "-c", SCRIPT, str(job), work], check=True)
        result: dict[str, Any] = json.loads((Path(work) / "out.json").read_text())
    return result
