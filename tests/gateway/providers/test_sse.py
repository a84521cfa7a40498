from stackyard.gateway.providers.sse import Event, SSEDecoder


def test_events_split_across_arbitrary_chunks() -> None:
    stream = (
        b'event: message_start\ndata: {"a": 1}\n\n'
        b": keep-alive comment\n\n"
        b"data: line one\r\ndata: line two\r\n\r\n"
        b"data: [DONE]\n\n"
    )
    for size in (1, 2, 3, 7, len(stream)):
        decoder = SSEDecoder()
        events: list[Event] = []
        for i in range(0, len(stream), size):
            events += decoder.feed(stream[i : i + size])
        events += decoder.flush()
        assert events == [
            Event("message_start", '{"a": 1}'),
            Event(None, "line one\nline two"),
            Event(None, "[DONE]"),
        ]


def test_multibyte_characters_split_between_chunks() -> None:
    data = 'data: {"text": "héllo ✓"}\n\n'.encode()
    decoder = SSEDecoder()
    events = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    assert events == [Event(None, '{"text": "héllo ✓"}')]


def test_unterminated_last_event_is_delivered_on_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [Event(None, "tail")]


def test_field_without_space_and_unknown_fields() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 3\nretry: 10\ndata:x\n\n") == [Event(None, "x")]
