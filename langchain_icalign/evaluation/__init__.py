"""Measuring alignment: a pairwise judge harness, reference NLL, output style, decontamination.

The judge harness follows Han (2023)'s protocol (a judge model scores two answers from 1
to 10), in both orders, with a win-rate interval clustered by prompt. Where no judge is
at hand, the reference NLL measures how far a prompting condition moves the base model
towards aligned answers, and style statistics describe what it generates.

Heavy modules (torch, transformers) are imported only when a model is used.
"""

from langchain_icalign.evaluation.bootstrap import BootstrapCI, clustered_bootstrap_mean
from langchain_icalign.evaluation.conditions import (
    CONDITIONS,
    DIAGNOSTIC_CONDITIONS,
    Condition,
    RandomDemoSelector,
    ZeroShotFormat,
    build_condition_chats,
)
from langchain_icalign.evaluation.decontaminate import (
    ContaminationMatch,
    DecontaminationReport,
    decontaminate,
    normalize_prompt,
)
from langchain_icalign.evaluation.jsonl_log import ResultLog, ResultLogConfigError
from langchain_icalign.evaluation.judge import (
    JUDGE_PROMPT_TEMPLATE,
    JUDGE_SYSTEM_PROMPT,
    PairwiseJudge,
    Review,
    parse_judge_scores,
    render_judge_messages,
)
from langchain_icalign.evaluation.nll import ReferenceNLL, answer_continuation, reference_nll
from langchain_icalign.evaluation.pairwise import (
    ORDERS,
    Judgement,
    PairwiseItem,
    judge_pairs,
)
from langchain_icalign.evaluation.records import (
    EvalItem,
    load_eval_items,
    load_pool,
    read_jsonl,
    sample_items,
)
from langchain_icalign.evaluation.runs import (
    GENERATION_KEY,
    NLL_KEY,
    item_seed,
    run_generations,
    run_reference_nll,
)
from langchain_icalign.evaluation.stack import EvalStack, build_eval_stack
from langchain_icalign.evaluation.style import (
    DEFAULT_LEAK_MARKERS,
    AnswerStyle,
    StyleStats,
    answer_style,
    style_stats,
)
from langchain_icalign.evaluation.summaries import summarize_nll, summarize_styles
from langchain_icalign.evaluation.winrate import (
    OutcomeCounts,
    PairwiseSummary,
    summarize_judgements,
)

__all__ = [
    "CONDITIONS",
    "DEFAULT_LEAK_MARKERS",
    "DIAGNOSTIC_CONDITIONS",
    "GENERATION_KEY",
    "JUDGE_PROMPT_TEMPLATE",
    "JUDGE_SYSTEM_PROMPT",
    "NLL_KEY",
    "ORDERS",
    "AnswerStyle",
    "BootstrapCI",
    "Condition",
    "ContaminationMatch",
    "DecontaminationReport",
    "EvalItem",
    "EvalStack",
    "Judgement",
    "OutcomeCounts",
    "PairwiseItem",
    "PairwiseJudge",
    "PairwiseSummary",
    "RandomDemoSelector",
    "ReferenceNLL",
    "ResultLog",
    "ResultLogConfigError",
    "Review",
    "StyleStats",
    "ZeroShotFormat",
    "answer_continuation",
    "answer_style",
    "build_condition_chats",
    "build_eval_stack",
    "clustered_bootstrap_mean",
    "decontaminate",
    "item_seed",
    "judge_pairs",
    "load_eval_items",
    "load_pool",
    "normalize_prompt",
    "parse_judge_scores",
    "read_jsonl",
    "reference_nll",
    "render_judge_messages",
    "run_generations",
    "run_reference_nll",
    "sample_items",
    "style_stats",
    "summarize_judgements",
    "summarize_nll",
    "summarize_styles",
]
