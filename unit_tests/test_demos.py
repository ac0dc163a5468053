import uuid

import pytest
from pydantic import ValidationError

from langchain_icalign import AlignmentDemo
from langchain_icalign.demos import point_id_for


def test_id_is_stable_and_ignores_whitespace_noise_and_metadata():
    a = AlignmentDemo(prompt="Hi there?", response="Hello!\n", metadata={"category": "x"})
    b = AlignmentDemo(prompt="  Hi there?\r\n", response="Hello!  ")
    assert a.id == b.id
    assert uuid.UUID(a.id).version == 5


def test_id_differs_with_content_and_turns():
    base = AlignmentDemo(prompt="Hi", response="Hello")
    assert base.id != AlignmentDemo(prompt="Hi", response="Hello.").id
    assert base.id != AlignmentDemo(prompt="Hi", response="Hello", turns=[("a", "b")]).id


def test_given_id_is_kept_and_mapped_to_a_uuid_point_id():
    demo = AlignmentDemo(prompt="Hi", response="Hello", id="demo-1")
    assert demo.id == "demo-1"
    assert uuid.UUID(demo.point_id)
    assert point_id_for("demo-1") == demo.point_id
    given = str(uuid.uuid4())
    assert point_id_for(given) == given


@pytest.mark.parametrize("field", ["prompt", "response"])
def test_blank_fields_are_refused(field):
    values = {"prompt": "Hi", "response": "Hello", field: "   "}
    with pytest.raises(ValidationError, match=field):
        AlignmentDemo(**values)


def test_blank_turn_and_reserved_metadata_are_refused():
    with pytest.raises(ValidationError, match="turn 0"):
        AlignmentDemo(prompt="Hi", response="Hello", turns=[("", "x")])
    with pytest.raises(ValidationError, match="reserved"):
        AlignmentDemo(prompt="Hi", response="Hello", metadata={"_demo": 1})


def test_example_round_trip():
    demo = AlignmentDemo.from_example({"input": "Q", "output": "A", "category": "c"})
    assert demo.metadata == {"category": "c"}
    assert demo.to_example() == {"input": "Q", "output": "A", "id": demo.id}
    with pytest.raises(ValueError, match="missing"):
        AlignmentDemo.from_example({"question": "Q"})
