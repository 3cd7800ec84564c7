"""The HTTP API's own bodies: errors, health, the people list.

Results (enrolment, verification, identification, removal) are not defined
here: they are `facerec.schemas`, the one JSON form the CLI's --json prints
too, and FastAPI documents those TypedDicts in the OpenAPI schema as they are.
What is left is what only HTTP has: the error body and the health probe, and
the object the people list is wrapped in.
"""

from __future__ import annotations

from pydantic import BaseModel

from facerec.schemas import PersonJSON


class ErrorOut(BaseModel):
    """Every 4xx/5xx body: a one-line reason and the kind of error."""

    detail: str
    error: str


class PeopleOut(BaseModel):
    people: list[PersonJSON]


class HealthOut(BaseModel):
    status: str
    model: str
    version: str
