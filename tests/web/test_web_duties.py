"""Departments to ask, by their 所掌事務 as well as through the suggested
programs (issue 14, item 3): a proposal no program fits still gets one."""

from __future__ import annotations

import re

from models.workflow_tables import Department

# Written for testing: a department of no program of the bundled catalogue,
# and a proposal about its duties that no program fits.
ANIMALS = Department(name="動物愛護課", parent="環境部",
                     duties="犬や猫の適正な飼い方の啓発、ドッグランの管理運営、動物愛護の普及")
DOG_RUN = {
    "title": "公園にドッグランを",
    "body": "愛犬家の会です。河川敷の公園の一角に、犬が綱を外して走れるドッグランを設け、飼い主のマナー教室も開きたい。",
}


def test_a_department_with_matching_duties_is_a_candidate(logged_in, submit, session):
    session.add(Department(**ANIMALS.model_dump(exclude={"id"})))
    session.commit()
    proposal = submit(**DOG_RUN)
    html = logged_in.get(f"/review/proposals/{proposal.id}").data.decode()
    candidates = re.findall(r'data-testid="department-candidate" data-source="(\w+)">\d+\. ([^（]+)（', html)
    assert ("duties", "動物愛護課") in candidates
    assert candidates[0] == ("duties", "動物愛護課"), candidates
    assert any(source == "program" for source, _ in candidates)
    # The ask form marks it, so the coordinator can tick it at once.
    assert re.search(r'value="動物愛護課"[^>]*> 動物愛護課[^<]* <span class="badge">所掌事務から', html)


def test_without_duties_the_candidates_are_the_programs_departments(logged_in, submitted):
    html = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    sources = re.findall(r'data-testid="department-candidate" data-source="(\w+)"', html)
    assert sources and set(sources) == {"program"}
