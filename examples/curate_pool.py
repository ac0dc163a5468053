"""Curate your own demo pool: keep the demos that move the model towards the answers you want.

Each demo is scored by how much it changes the reference answers' likelihood when it is
retrieved for a dev prompt; greedy selection then drops the demos whose absence helps.
The same runs from the command line:

    icalign curate my_pool.jsonl --dev my_dev.jsonl --out curated.jsonl --report report.json

Use dev prompts you will not report results on. Run: .venv/bin/python examples/curate_pool.py
"""

from langchain_icalign import AlignmentDemo
from langchain_icalign.curation import curate_pool
from langchain_icalign.defaults import default_embeddings, load_base_model
from langchain_icalign.evaluation import EvalItem

pool = [
    AlignmentDemo(
        prompt="How do I keep basil alive on a windowsill?",
        response=(
            "Give it the sunniest window you have and water when the top of the soil feels "
            "dry. Pinch off the tips above a pair of leaves every week or two so it grows "
            "bushy instead of tall, and never let it flower if you want leaves."
        ),
    ),
    AlignmentDemo(
        prompt="How do I keep a fern healthy indoors?",
        response="**Ferns!!!** LOVE them. Water. Light. Done!!! :)",
    ),
    AlignmentDemo(
        prompt="What is a good first houseplant?",
        response=(
            "A pothos is hard to beat: it tolerates low light, tells you when it is thirsty "
            "by drooping, and recovers quickly once watered."
        ),
    ),
]
dev = [
    EvalItem(
        "mint",
        "How should I look after a mint plant in a pot?",
        "Keep it in a bright spot, water it often enough that the soil stays lightly moist, "
        "and cut it back regularly so it stays full.",
    ),
    EvalItem(
        "cactus",
        "How often should I water a cactus?",
        "Water thoroughly, then wait until the soil has dried out completely, which is "
        "usually every two to four weeks in summer and much less in winter.",
    ),
]

model, tokenizer, _ = load_base_model(None, show_progress=False)
report = curate_pool(
    pool,
    dev,
    model=model,
    tokenizer=tokenizer,
    embeddings=default_embeddings(),
    budget=400,
    candidates=2,
    max_reference_tokens=64,
    show_progress=False,
)
for effect in report.effects:
    prompt = next(d.prompt for d in pool if d.id == effect.demo_id)
    print(f"{effect.mean_delta:+.3f} nats/token over {effect.uses} dev prompt(s): {prompt}")
print(f"kept {len(report.kept)} of {len(pool)}; removed: {[d.prompt for d in report.removed]}")
