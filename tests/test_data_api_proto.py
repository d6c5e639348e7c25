"""capsync's copies of the data API messages match viam-sdk's generated ones field for field.

Every message and enum of ``capsync.viam.app.data.v1`` and
``capsync.viam.app.dataset.v1`` must exist in viam-sdk 0.85.1 under Viam's name,
with the same field names, numbers, types, labels and (for message fields) type
names; capsync may leave fields out (never add or renumber one).
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from viam.gen.app.data.v1 import data_pb2 as viam_data
from viam.gen.app.dataset.v1 import dataset_pb2 as viam_dataset

from capsync.proto.viam.app.data.v1 import data_pb2
from capsync.proto.viam.app.dataset.v1 import dataset_pb2

pytestmark = pytest.mark.wire_independent

PAIRS = [(data_pb2, viam_data), (dataset_pb2, viam_dataset)]
MESSAGES = [(ours, theirs, name) for ours, theirs in PAIRS
            for name in ours.DESCRIPTOR.message_types_by_name]  # fmt: skip
ENUMS = [(ours, theirs, name) for ours, theirs in PAIRS
         for name in ours.DESCRIPTOR.enum_types_by_name]  # fmt: skip


def _field_shape(field: Any) -> tuple[Any, ...]:
    type_name = ""
    if field.message_type is not None:
        type_name = field.message_type.full_name.removeprefix("capsync.")
    elif field.enum_type is not None:
        type_name = field.enum_type.full_name.removeprefix("capsync.")
    optional = bool(getattr(field, "has_presence", False)) and field.containing_oneof is not None
    return (field.number, field.type, field.is_repeated if hasattr(field, "is_repeated")
            else field.label == field.LABEL_REPEATED, type_name, optional)  # fmt: skip


@pytest.mark.parametrize(("ours", "theirs", "name"), MESSAGES, ids=[m[2] for m in MESSAGES])
def test_message_matches_viam(ours: Any, theirs: Any, name: str) -> None:
    mine: Descriptor = ours.DESCRIPTOR.message_types_by_name[name]
    viam: Descriptor = theirs.DESCRIPTOR.message_types_by_name[name]
    assert mine.full_name == "capsync." + viam.full_name
    viam_fields = {f.name: _field_shape(f) for f in viam.fields}
    for field in mine.fields:
        assert field.name in viam_fields, f"{name}.{field.name} is not Viam's"
        assert _field_shape(field) == viam_fields[field.name], f"{name}.{field.name}"


@pytest.mark.parametrize(("ours", "theirs", "name"), ENUMS, ids=[e[2] for e in ENUMS])
def test_enum_matches_viam(ours: Any, theirs: Any, name: str) -> None:
    mine: EnumDescriptor = ours.DESCRIPTOR.enum_types_by_name[name]
    viam: EnumDescriptor = theirs.DESCRIPTOR.enum_types_by_name[name]
    viam_values = {v.name: v.number for v in viam.values}
    assert {v.name: v.number for v in mine.values}.items() <= viam_values.items()


def test_every_data_api_method_the_server_answers_is_viams() -> None:
    from capsync.server import data_service, dataset_service

    viam_data_methods = {
        m.name for m in viam_data.DESCRIPTOR.services_by_name["DataService"].methods
    }
    served = set(data_service._MESSAGES) | set(data_service.UNIMPLEMENTED)
    assert served == viam_data_methods
    viam_dataset_methods = {
        m.name for m in viam_dataset.DESCRIPTOR.services_by_name["DatasetService"].methods
    }
    assert (
        set(dataset_service._MESSAGES) | set(dataset_service.UNIMPLEMENTED) == viam_dataset_methods
    )
    for name, (request, _) in data_service._MESSAGES.items():
        method = viam_data.DESCRIPTOR.services_by_name["DataService"].methods_by_name[name]
        assert request.DESCRIPTOR.full_name == "capsync." + method.input_type.full_name
