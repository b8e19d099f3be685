from evoagent.sandbox.capture import HeadTail


def test_head_tail_keeps_both_ends_and_counts_the_middle():
    capture = HeadTail(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        capture.feed(chunk)
    assert bytes(capture.head) == b"abcde"
    assert bytes(capture.tail) == b"vwxyz"
    assert capture.dropped == 16
    assert capture.text() == "abcde\n[... 16 bytes of output omitted ...]\nvwxyz"


def test_head_tail_under_the_cap_is_verbatim():
    capture = HeadTail(100)
    capture.feed(b"hello\n")
    assert not capture.truncated
    assert capture.text() == "hello\n"
