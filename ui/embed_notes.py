"""The notes beside the maps and above the layer figure: labels, copies, sentences read alike, negative layers."""
from __future__ import annotations

from collections import Counter

from core.compare import embed, quality, similarity
from core.compare.sentences import SentenceSet
from ui.embed_inputs import ModelChoice, short_quote
from ui.page_text import markdown_text


def label_purities(sentences: SentenceSet, spaces: list[embed.Space]) -> tuple[int, list[float], float] | None:
    """For labelled sentences (every one labelled, at least two labels): (k, each space's share of same-label
    neighbours among each sentence's k nearest by cosine, the share by chance); None otherwise."""
    labels = sentences.labels
    if len(sentences) < 3 or not all(labels) or len(set(labels)) < 2:
        return None
    k = similarity.effective_k(len(sentences), quality.TOPIC_K)
    return k, [quality.label_purity(s.vectors, labels, k) for s in spaces], quality.chance_purity(labels)


def purity_note(sentences: SentenceSet, spaces: list[embed.Space]) -> str:
    """label_purities as a sentence; "" for sentences without labels."""
    found = label_purities(sentences, spaces)
    if found is None:
        return ""
    k, shares, chance = found
    listed = ", ".join(f"{markdown_text(s.model)} {share:.0%}" for s, share in zip(spaces, shares))
    return f" Same-label neighbours (of each sentence's {k} nearest, cosine): {listed}; chance {chance:.0%}."


MAX_LISTED = 8  # sentence numbers a note lists before it counts the rest


def numbers_text(numbers: tuple[int, ...]) -> str:
    """Sentence numbers as a note lists them: "#1, #4 and #9"; past MAX_LISTED, "#1, #2, ... and 12 more"."""
    shown = [f"#{i}" for i in numbers[:MAX_LISTED]]
    if len(numbers) > MAX_LISTED:
        return f"{', '.join(shown)} and {len(numbers) - MAX_LISTED} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def same_tokens_lines(models: list, sentences: SentenceSet, on_maps: bool = True) -> list[str]:
    """The different sentences that models read as the same tokens, and why, one sentence (plain text) a group;
    models that read a group alike (one tokenizer) are named together. With `on_maps`, each says the group shares
    one point on the models' maps (`models`: one a map, so a model in two boxes, at two layers, comes twice), else
    that it has one vector at every layer (Layer similarity). [] when there are none."""
    maps = Counter(m.name for m in models)  # a model's maps: one a box it is in
    readers: dict[tuple, list[str]] = {}  # (sentences, why, tokens read) -> the models' names, as typed
    for loaded in {m.name: m for m in models}.values():
        for group in embed.same_tokens(loaded, sentences):
            why = ("unknown" if group.unknown_only else "cut" if group.truncated
                   else "partly unknown" if group.with_unknown else "same")
            readers.setdefault((group.sentences, why, embed.tokens_read(loaded)), []).append(loaded.name)
    lines = []
    for (numbers, why, read), names in readers.items():
        who = f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]
        what = {"unknown": f"are only unknown tokens ([UNK]) to {who}: none of their characters is in the vocabulary",
                "cut": f"begin with the same {read} tokens, all that {who} {'reads' if len(names) == 1 else 'read'}",
                "partly unknown": f"differ only in characters unknown to {who}, read as [UNK]",
                "same": f"are the same tokens to {who}"}[why]
        if on_maps:
            shown_on = sum(maps[name] for name in names)
            where = "its map" if shown_on == 1 else "its maps" if len(names) == 1 else "those maps"
            shared = f"they share one point on {where}"
        else:
            shared = "they share one vector at every layer"
        lines.append(f"{len(numbers)} sentences ({numbers_text(numbers)}) {what}; {shared}.")
    return lines


MAX_COPIED = 4  # sentences given more than once that the note names before it counts the rest


def copies_note(sentences: SentenceSet) -> str:
    """The sentences the set holds more than once, as the note's Markdown: each by its text, how many times and
    where, and what follows (one point on each map; never listed as each other's neighbours, and listed once among
    another's). "" when every sentence is different."""
    numbers: dict[str, list[int]] = {}
    for i, text in enumerate(sentences.sentences):
        numbers.setdefault(text, []).append(i)
    copied = [(text, found) for text, found in numbers.items() if len(found) > 1]
    if not copied:
        return ""
    named = [f"'{short_quote(text)}' {'twice' if len(found) == 2 else f'{len(found)} times'} "
             f"({numbers_text(tuple(found))})" for text, found in copied[:MAX_COPIED]]
    if len(copied) > MAX_COPIED:
        named.append(f"{len(copied) - MAX_COPIED} more sentences given more than once")
    listed = f"{', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else named[0]
    return markdown_text(f" The set holds {listed}: copies share one point on each map, are not each other's "
                         "neighbours, and a list of neighbours names them once, by the first number.")


def same_tokens_note(models: list, sentences: SentenceSet) -> str:
    """same_tokens_lines of the maps as the note's Markdown, each after a space; "" when there are none."""
    return markdown_text("".join(f" {line}" for line in same_tokens_lines(models, sentences)))


def layers_used_note(chosen: list[ModelChoice], spaces: list[embed.Space]) -> str:
    """The layer each negative layer other than -1 stands for (-5 of a 4-layer model is layer 0), as a sentence of
    the note: a box showing -5 beside a map of layer 0 would otherwise leave the change unsaid. "" when none."""
    lines = [f" Layer {choice.layer} of model {choice.box} is layer {space.layer} of {space.model}: negative layers "
             f"count from the last, as in Python (-1 is layer {space.layers})."
             for choice, space in zip(chosen, spaces) if choice.layer is not None and choice.layer < -1]
    return markdown_text("".join(lines))
