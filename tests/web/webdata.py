"""Data shared by the web tests (a module of its own: conftest is not importable)."""

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
