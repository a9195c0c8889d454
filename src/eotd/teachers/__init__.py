"""Teachers that write CoT, PoT and EoT rationales: an OpenAI-compatible endpoint, a local transformers model, or
the offline annotation teacher that derives them from gold worked solutions."""
from __future__ import annotations

from eotd.params import Params
from eotd.teachers.base import Completion, Request, Teacher, Usage

__all__ = ["Completion", "Request", "Teacher", "Usage", "build"]


def build(p: Params) -> Teacher:
    """The teacher a params file asks for."""
    if p.teacher == "annotation":
        from eotd.teachers.annotation import AnnotationTeacher

        return AnnotationTeacher()
    if p.teacher in ("openai", "transformers") and not p.teacher_model:
        raise ValueError(f"teacher {p.teacher!r} needs teacher_model in the params file")
    if p.teacher == "openai":
        from eotd.teachers.openai_compat import OpenAITeacher

        return OpenAITeacher(
            p.teacher_model, base_url=p.teacher_base_url or "https://api.openai.com/v1",
            api_key_env=p.teacher_api_key_env, temperature=p.temperature, max_tokens=p.teacher_max_tokens,
            concurrency=p.teacher_concurrency, seed=p.seed, price_input_per_m=p.price_input_per_m,
            price_output_per_m=p.price_output_per_m, budget=p.budget_usd, timeout=p.teacher_timeout,
            max_retries=p.teacher_max_retries,
        )
    if p.teacher == "transformers":
        from eotd.teachers.local import TransformersTeacher

        return TransformersTeacher(
            p.teacher_model, temperature=p.temperature, max_new_tokens=p.teacher_max_tokens,
            batch_size=p.teacher_batch_size, seed=p.seed,
        )
    raise ValueError(f"unknown teacher {p.teacher!r}: use 'annotation', 'openai' or 'transformers'")
