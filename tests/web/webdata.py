"""Data and the form submission shared by the web tests (a module of its
own: conftest is not importable)."""

from __future__ import annotations

import re
from dataclasses import dataclass

PASSWORD = "correct horse battery"
PROPOSAL = {
    "organization": "NPO法人みどりの輪",
    "representative": "山田花子",
    "email": "hanako@example.jp",
    "phone": "03-1234-5678",
    "title": "公園の清掃と子どもの環境学習",
    "body": "地域の公園で清掃活動を行い、子どもたちと一緒にごみの分別やリサイクルについて学ぶ環境学習の講座を開催します。",
    "expected_effect": "公園がきれいになり、子どもの環境への関心が高まる。",
    "collaboration_type": "co_hosting",
    "budget_thousand_yen": "300",
    "consent": "y",  # the form's 個人情報の取扱い box (not a key of the API)
}
# The proposal as a system sends it to POST /api/v1/proposals: no consent box
# (the form's alone; the API refuses keys it does not know).
PROPOSAL_FIELDS = {k: v for k, v in PROPOSAL.items() if k != "consent"}


@dataclass
class Submitted:
    id: int
    receipt_number: str
    status_path: str


def submit_form(client, **overrides) -> Submitted:
    """Post the public form (PROPOSAL with ``overrides``), follow to the receipt and read it."""
    response = client.post("/proposals/new", data={**PROPOSAL, **overrides})
    assert response.status_code == 303, response.data.decode()[:2000]
    response.close()  # as a WSGI server does: the full suggestions and related lists follow the response
    receipt = client.get(response.headers["Location"])
    html = receipt.data.decode()
    number = re.search(r'data-testid="receipt-number">([^<]+)<', html).group(1)
    link = re.search(r'data-testid="status-link">https?://[^/]+(/status/[^<]+)<', html).group(1)
    return Submitted(int(number.split("-")[1]), number, link)
