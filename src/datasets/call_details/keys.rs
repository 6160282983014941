//! The keys of each level of a Call Details record that the decoder (`wire`) reads, in any
//! casing: every other key of the level is an unmapped field, kept in its rows' `extra`
//! (see [`crate::sources::extra`]). A key added to a decoder's reads must be added here, or it
//! would be both a column and an `extra` field.
//!
//! Each level is an enum (one variant per key, which the decoder reads by) with its names in
//! the same order; [`Level::find`] maps a key in any casing to its variant with one `match` on
//! the lowercased bytes instead of comparing it with every name.

/// One level's keys.
pub(super) trait Level: Copy {
    /// The names, in variant order (the spelling the docs use).
    const NAMES: &'static [&'static str];
    /// The position of the variant in [`Level::NAMES`].
    fn index(self) -> usize;
    /// The position of the name whose lowercase is `lower`.
    fn find(lower: &[u8]) -> Option<usize>;
    /// The name (the docs' spelling).
    fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

/// Declares a level: the enum and its [`Level`]. Each key is given as its
/// variant, its name and its name in lowercase (checked by a test).
macro_rules! level {
    ($(#[$doc:meta])* $level:ident { $($variant:ident = $name:literal $lower:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum $level {
            $($variant,)*
        }

        impl Level for $level {
            const NAMES: &'static [&'static str] = &[$($name,)*];
            fn index(self) -> usize {
                self as usize
            }
            fn find(lower: &[u8]) -> Option<usize> {
                match lower {
                    $($lower => Some($level::$variant as usize),)*
                    _ => None,
                }
            }
        }
    };
}

level! {
    /// The keys of a session record the decoder reads (any casing); every other key is unmapped.
    S {
        SessionId = "sessionId" b"sessionid",
        ConversationId = "conversationId" b"conversationid",
        Channel = "channel" b"channel",
        BotId = "botId" b"botid",
        UserId = "userId" b"userid",
        ChannelSpecificUserId = "channelSpecificUserId" b"channelspecificuserid",
        OrgId = "orgId" b"orgid",
        SessionStartTime = "sessionStartTime" b"sessionstarttime",
        SessionEndTime = "sessionEndTime" b"sessionendtime",
        FinalStatus = "finalStatus" b"finalstatus",
        SmartStatus = "smartStatus" b"smartstatus",
        Reason = "reason" b"reason",
        DisconnectingEvent = "disconnectingEvent" b"disconnectingevent",
        ErrorDetails = "errorDetails" b"errordetails",
        Direction = "direction" b"direction",
        IsVoicemail = "isVoicemail" b"isvoicemail",
        Skills = "skills" b"skills",
        Dispositions = "dispositions" b"dispositions",
        DispositionRemarks = "dispositionRemarks" b"dispositionremarks",
        SurveyType = "surveyType" b"surveytype",
        CsatScore = "csatScore" b"csatscore",
        CsatFeedback = "csatFeedback" b"csatfeedback",
        NpsScore = "npsScore" b"npsscore",
        LikeDislikeScore = "likeDislikeScore" b"likedislikescore",
        Customerinfo = "customerinfo" b"customerinfo",
        Userleveltags = "userleveltags" b"userleveltags",
        Sessionleveltags = "sessionleveltags" b"sessionleveltags",
        Campaigninfo = "campaigninfo" b"campaigninfo",
        AutomationBotIds = "automationBotIDs" b"automationbotids",
        MetaInfo = "metaInfo" b"metainfo",
        Destinations = "destinations" b"destinations",
    }
}

level! {
    /// The keys of `customerinfo` the decoder reads (`Direction` is v1's).
    C {
        CustomerPhone = "CustomerPhone" b"customerphone",
        CenterPhone = "CenterPhone" b"centerphone",
        CustomerFirstName = "CustomerFirstName" b"customerfirstname",
        CustomerLastName = "CustomerLastName" b"customerlastname",
        CustomerEmail = "CustomerEmail" b"customeremail",
        Direction = "direction" b"direction",
    }
}

level! {
    /// The keys of `campaigninfo` the decoder reads.
    K {
        CampaignName = "campaignName" b"campaignname",
        CampaignId = "campaignId" b"campaignid",
        CampaignInstanceId = "campaignInstanceId" b"campaigninstanceid",
        CampaignDialingListId = "campaignDialingListId" b"campaigndialinglistid",
        Attempt = "attempt" b"attempt",
        ContactStatus = "contactStatus" b"contactstatus",
        CampaignRunDate = "campaignRunDate" b"campaignrundate",
        ContactListName = "contactListName" b"contactlistname",
    }
}

level! {
    /// The keys of a `QueueEntry` destination the decoder reads.
    Q {
        DestinationType = "destinationType" b"destinationtype",
        QueueId = "queueId" b"queueid",
        QueueName = "queueName" b"queuename",
        EnterTime = "EnterTime" b"entertime",
        CallbackOpted = "CallbackOpted" b"callbackopted",
        CallbackOptedTime = "CallbackOptedTime" b"callbackoptedtime",
        UserCallbackAcceptTime = "userCallbackAcceptTime" b"usercallbackaccepttime",
        RespondingAgent = "respondingAgent" b"respondingagent",
        NonRespondingAgents = "nonRespondingAgents" b"nonrespondingagents",
    }
}

level! {
    /// The keys of an agent leg (an `AgentSegment` destination, `respondingAgent` or a
    /// `nonRespondingAgents[]` element) the decoder reads.
    A {
        DestinationType = "destinationType" b"destinationtype",
        AgentId = "agentId" b"agentid",
        Email = "email" b"email",
        Name = "name" b"name",
        Status = "status" b"status",
        NonResponseEvent = "nonResponseEvent" b"nonresponseevent",
        AssignedAt = "assignedAt" b"assignedat",
        AcceptedTime = "acceptedTime" b"acceptedtime",
        FirstResponseTime = "firstResponseTime" b"firstresponsetime",
        FirstResponseDuration = "firstResponseDuration" b"firstresponseduration",
        InteractionEndTime = "interactionEndTime" b"interactionendtime",
        InteractionDuration = "interactionDuration" b"interactionduration",
        AfterCallWorkEndTime = "afterCallWorkEndTime" b"aftercallworkendtime",
        AfterCallWorkDuration = "afterCallWorkDuration" b"aftercallworkduration",
        AgentNotes = "agentNotes" b"agentnotes",
        ConsultingAgents = "ConsultingAgents" b"consultingagents",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<L: Level>() {
        for (i, name) in L::NAMES.iter().enumerate() {
            assert_eq!(
                L::find(name.to_ascii_lowercase().as_bytes()),
                Some(i),
                "{name}"
            );
        }
        assert_eq!(L::find(b"notakey"), None);
    }

    #[test]
    fn every_name_is_found_in_any_casing() {
        check::<S>();
        check::<C>();
        check::<K>();
        check::<Q>();
        check::<A>();
        assert_eq!(S::Destinations.name(), "destinations");
        assert_eq!(A::ConsultingAgents.name(), "ConsultingAgents");
    }
}
