"""The advertiser web app (`adgen ui`): a Gradio front end over the adgen core library.

It never loads a model and never generates in a request: campaigns run in a separate runner process
(`ui.jobs.start_campaign`) and the pages poll the records for progress and new creatives.
"""
