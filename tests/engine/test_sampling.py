import pytest

from stackyard.engine.sampling import TextTail


def feed(tail: TextTail, texts: list[str]) -> tuple[str, bool]:
    out = ""
    for text in texts:
        delta, stopped = tail.update(text)
        out += delta
        if stopped:
            return out, True
    return out + tail.flush(), False


def test_no_stop_strings_emit_everything() -> None:
    assert feed(TextTail([]), ["He", "Hell", "Hello"]) == ("Hello", False)


def test_stop_string_split_across_tokens_is_never_emitted() -> None:
    tail = TextTail(["END"])
    emitted = []
    for text in ["abc", "abcE", "abcEN", "abcEND"]:
        delta, stopped = tail.update(text)
        emitted.append(delta)
    assert "".join(emitted) == "abc"
    assert stopped


def test_held_back_text_is_flushed_at_the_end() -> None:
    assert feed(TextTail(["STOP"]), ["a", "ab", "abS", "abST"]) == ("abST", False)


def test_incomplete_characters_wait() -> None:
    tail = TextTail([])
    assert tail.update("caf\ufffd") == ("caf", False)
    assert tail.update("café") == ("é", False)


@pytest.mark.parametrize("stops", [["x"], ["xyz", "q"]])
def test_stop_at_the_start(stops: list[str]) -> None:
    assert feed(TextTail(stops), [stops[0]]) == ("", True)
