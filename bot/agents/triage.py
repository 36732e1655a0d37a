"""The triage agent: the rubric's baseline offline, and the question an LLM answers to adjust it."""

from __future__ import annotations

import json

from bot.schemas.triage import (
    LOWERING_REASONS,
    RAISING_REASONS,
    ChangeFeatures,
    LlmAdjustment,
    RuleHit,
)


def adjustment_request(features: ChangeFeatures, breakdown: list[RuleHit],
                       baseline: int) -> tuple[str, str]:
    """The system and user prompt asking an LLM for a −2..+2 adjustment with enum reasons."""
    system = (
        "You assess how hard it is to merge a pull request's base branch into it safely. A"
        " deterministic rubric gave a baseline complexity from 1 to 10. You may adjust it by an"
        " integer from -2 to +2, only for reasons from a fixed list. Raising reasons: "
        + ", ".join(sorted(r.value for r in RAISING_REASONS))
        + ". Lowering reasons: "
        + ", ".join(sorted(r.value for r in LOWERING_REASONS))
        + ". A positive value needs raising reasons only, a negative one lowering reasons only;"
        " 0 needs none. Answer with one JSON object only, no prose and no code fences, matching"
        " this JSON Schema: " + json.dumps(LlmAdjustment.model_json_schema(), sort_keys=True)
    )
    prompt = json.dumps(
        {
            "baseline": baseline,
            "rules_fired": [hit.model_dump(mode="json") for hit in breakdown],
            "merge": features.merge.model_dump(mode="json"),
            "files": [
                {"path": f.path, "kind": f.kind.value, "status": f.status.value,
                 "added": f.added, "removed": f.removed}
                for f in features.files[:200]
            ],
        },
        indent=1,
    )
    return system, prompt
