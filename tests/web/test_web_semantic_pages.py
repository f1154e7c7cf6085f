"""The proposal page in semantic mode (the default install), with the real e5
model: the related proposals show their e5 likeness beside the TF-IDF one, and
a department whose 所掌事務 fit is a candidate to ask, found through the fused
index. SQLite and PostgreSQL; proposals written for testing."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session
from webdata import PASSWORD, submit_form

from models.workflow_tables import Department
from office.accounts import create_user
from web import create_app
from web.db import dispose, get_engine, get_matching

# Two groups on one subject in different words, and another subject.
KITCHEN = {"title": "子ども食堂を開きたい", "body": "地域の集会所で月に二回、子どもたちに温かい夕食と居場所を届ける子ども食堂を開きたい。"}
DINNER = {"organization": "みんなの食卓", "email": "shokutaku@example.jp", "title": "放課後の夕ごはん会",
          "body": "共働き家庭の小学生が、放課後に地域の大人と一緒に夕ごはんを食べられる場をつくりたい。"}
DRILL = {"organization": "防災の輪", "email": "bousai@example.jp", "title": "地域の防災講座",
         "body": "自治会と一緒に地域の防災講座と避難訓練を開き、高齢者の防災意識を高めたい。"}
# A department of no program of the bundled catalogue (written for testing).
CHILDREN = Department(name="こども家庭課", parent="子ども家庭部",
                      duties="子ども食堂や子どもの居場所づくりの支援、ひとり親家庭の相談、子どもの貧困対策")


@pytest.fixture
def semantic_client(app):
    """The test app's database with MATCH_MODE semantic, a coordinator logged in."""
    semantic = create_app({**app.config, "MATCH_MODE": "semantic"})
    with Session(get_engine(semantic)) as session:
        create_user(session=session, username="coord", password=PASSWORD)
        session.add(Department(**CHILDREN.model_dump(exclude={"id"})))
        session.commit()
    client = semantic.test_client()
    assert client.post("/login", data={"username": "coord", "password": PASSWORD}).status_code == 302
    yield semantic, client
    dispose(semantic)


def test_related_proposals_show_the_e5_likeness_and_duties_give_candidates(semantic_client):
    app, client = semantic_client
    kitchen, dinner, drill = (submit_form(client, **fields) for fields in (KITCHEN, DINNER, DRILL))
    assert get_matching(app).is_semantic
    get_matching(app).rematch(engine=get_engine(app))  # the nightly run: fused suggestions, related proposals
    html = client.get(f"/review/proposals/{kitchen.id}").data.decode()
    items = re.findall(r'data-testid="related-item" data-proposal-id="(\d+)"', html)
    assert items[0] == str(dinner.id) and str(drill.id) in items  # the same subject first, in other words
    likeness = [float(x) for x in re.findall(r'data-testid="related-semantic">意味の近さ（e5）([0-9.]+)<', html)]
    assert len(likeness) == len(items) and all(0.5 < x <= 1.0 for x in likeness)
    assert likeness[0] > likeness[items.index(str(drill.id))]  # the e5 likeness of the same subject is higher
    candidates = re.findall(r'data-testid="department-candidate" data-source="(\w+)">\d+\. ([^（]+)（', html)
    assert ("duties", "こども家庭課") in candidates[:3], candidates
