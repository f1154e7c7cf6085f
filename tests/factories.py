"""Small factories for database tests (as in full-stack-fastapi-template)."""

from __future__ import annotations

from sqlmodel import Session, select

from models.tables import Decision, Program, Proposal, ProposalCreate
from office import commands
from office.commands import Actor
from office.intake import receive_proposal

# Proposals written for the bundled 2008 catalogue.
PROPOSAL_TEXTS = {
    "防災": ("地域の防災講座", "自治会と一緒に地域の防災講座と避難訓練を開き、高齢者の防災意識を高めたい。"),
    "子育て": ("親子サロン", "子育て中の親子が集まるサロンを開き、子育ての悩みを地域で支え合いたい。"),
    "環境": ("川の清掃", "市民が参加する川の清掃活動と環境学習で、まちの環境美化を進めたい。"),
    "まちづくり": ("まちづくり講座", "市民が主役のまちづくりを学ぶ講座と、地域の人材を活かす活動を続けたい。"),
    "情報": ("市政の見える化", "市政情報や財政状況を分かりやすく公開し、市民が地域の課題を考える場をつくる。"),
    "ボランティア": ("ボランティア育成", "市民活動やボランティア活動に参加するきっかけを増やし、活動団体を支援したい。"),
}


def create_random_proposal(session: Session, topic: str = "防災", **fields: object) -> Proposal:
    title, body = PROPOSAL_TEXTS[topic]
    values: dict[str, object] = {"title": title, "body": body, "organization": f"NPO {topic}"}
    values.update(fields)
    proposal, _ = receive_proposal(session=session, proposal_in=ProposalCreate(**values))  # type: ignore[arg-type]
    return proposal


def program_by_external_id(session: Session, external_id: str, fiscal_year: int = 2008) -> Program:
    program = session.exec(
        select(Program).where(Program.external_id == external_id, Program.fiscal_year == fiscal_year)
    ).one()
    return program


def decide(session: Session, proposal_id: int, program_id: int, verdict: str, note: str = "") -> Decision:
    """One decision through the coordinator's command (its status change and event included)."""
    proposal = session.get(Proposal, proposal_id)
    assert proposal is not None
    change = commands.decide(
        session=session, proposal=proposal, program_id=program_id, verdict=verdict, note=note,
        actor=Actor(name="支援室 山田"),
    )
    return change.decisions[0]
