"""Loads API answers the way the Trends.Earth QGIS plugin does.

The plugin turns each execution into a job with a marshmallow dataclass schema, and each
script of `GET /api/v1/script` into a remote script. Both schemas keep marshmallow's
default for keys they do not know (refuse them), and their statuses are enums. The
classes below have the fields and types of the plugin's schemas (te_schemas' `Job`,
`ExecutionScript` and `RemoteScript`): an answer they refuse is one the plugin drops.

Reads `{"jobs": [...], "scripts": [...]}` on stdin and prints `{"jobs": [...],
"scripts": [...]}`: for each item null when it loaded, else marshmallow's messages.
"""

import dataclasses
import datetime
import enum
import json
import sys
import typing
import uuid

import marshmallow
import marshmallow_dataclass
from marshmallow import pre_load


class JobStatus(enum.Enum):
    READY = "READY"
    PENDING = "PENDING"
    FINISHED = "FINISHED"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    DELETED = "DELETED"
    DOWNLOADED = "DOWNLOADED"
    GENERATED_LOCALLY = "GENERATED_LOCALLY"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class ScriptStatus(enum.Enum):
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    BUILDING = "BUILDING"


@marshmallow_dataclass.dataclass
class ExecutionScript:
    """A job's script: the one schema of the plugin that leaves unknown keys out."""

    class Meta:
        unknown = marshmallow.EXCLUDE

    id: typing.Union[uuid.UUID, str]
    name: typing.Optional[str] = ""
    slug: typing.Optional[str] = ""
    version: typing.Optional[str] = ""
    description: typing.Optional[str] = ""


@marshmallow_dataclass.dataclass
class RemoteScript:
    id: uuid.UUID
    name: str
    slug: str
    description: str
    status: ScriptStatus = dataclasses.field(metadata={"by_value": True})
    created_at: datetime.datetime
    updated_at: datetime.datetime
    user_id: uuid.UUID
    public: bool
    cpu_reservation: typing.Optional[int]
    cpu_limit: typing.Optional[int]
    memory_reservation: typing.Optional[int]
    memory_limit: typing.Optional[int]


@marshmallow_dataclass.dataclass
class Job:
    id: uuid.UUID
    params: dict
    progress: int
    start_date: datetime.datetime
    status: JobStatus = dataclasses.field(metadata={"by_value": True})
    results: typing.Optional[dict] = dataclasses.field(default_factory=dict)
    task_name: typing.Optional[str] = None
    task_notes: typing.Optional[str] = None
    script: typing.Optional[ExecutionScript] = None
    end_date: typing.Optional[datetime.datetime] = None
    user_id: typing.Optional[uuid.UUID] = None

    @pre_load
    def script_and_task(self, data, **kwargs):
        # As the plugin does: the script id becomes a script when none is embedded, and
        # the task's name and notes come out of the params.
        data = dict(data)
        script_id = data.pop("script_id", None)
        if not data.get("script"):
            data["script"] = {"id": script_id or "Unknown script"}
        params = dict(data.get("params") or {})
        for key in ("task_name", "task_notes"):
            if key in params and not data.get(key):
                data[key] = params.pop(key)
        data["params"] = params
        return data


def messages(schema, item):
    try:
        schema.load(item)
    except marshmallow.ValidationError as err:
        return err.messages
    return None


def main():
    answers = json.load(sys.stdin)
    job_schema = Job.Schema()
    script_schema = RemoteScript.Schema()
    print(
        json.dumps(
            {
                "jobs": [messages(job_schema, j) for j in answers.get("jobs", [])],
                "scripts": [messages(script_schema, s) for s in answers.get("scripts", [])],
            }
        )
    )


if __name__ == "__main__":
    main()
